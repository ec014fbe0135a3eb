"""lorareuse-vllm's settings that differ between CPU and GPU, asserted on CPU (a GPU run uses them)."""

import importlib.metadata
import json
import os

import pytest

pytest.importorskip("vllm")


def test_importing_the_backend_leaves_importlib_metadata_alone():
    original = importlib.metadata.version
    backend = importlib.import_module("lorareuse_plugin.models.vllm")  # first: lm-eval checks the version
    vllm_causallms = importlib.import_module("lm_eval.models.vllm_causallms")

    assert importlib.metadata.version is original  # no process-wide patch
    assert importlib.metadata.version.__module__ == "importlib.metadata"
    assert vllm_causallms.version is backend._version  # only lm-eval's module sees the shim
    assert vllm_causallms.version("vllm").startswith("0.")


def test_eager_mode_and_the_in_process_engine_are_cpu_only(monkeypatch):
    from lorareuse_plugin.models.vllm import CPU_ENV, engine_defaults

    for key in CPU_ENV:
        monkeypatch.delenv(key, raising=False)
    gpu = engine_defaults({"max_model_len": 256}, on_cpu=False)
    assert gpu == {"max_model_len": 256}  # CUDA graphs on, vLLM's own engine process
    assert not any(key in os.environ for key in CPU_ENV)
    cpu = engine_defaults({"max_model_len": 256}, on_cpu=True)
    assert cpu["enforce_eager"] is True and all(os.environ[k] == v for k, v in CPU_ENV.items())
    assert engine_defaults({"enforce_eager": False}, on_cpu=True)["enforce_eager"] is False  # the user's wins


def test_env_vars_are_not_set_at_import():
    import subprocess
    import sys

    from lorareuse_plugin.models.vllm import CPU_ENV

    env = {k: v for k, v in os.environ.items() if k not in CPU_ENV}
    code = "import os, lorareuse_plugin.models.vllm as b; print(sorted(k for k in b.CPU_ENV if k in os.environ))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_scorer_is_built_in_the_engines_dtype(tiny_library):
    import torch

    from lorareuse_plugin.models.vllm import LorareuseVLLM
    from lorareuse_plugin.reuse.spec import parse_spec

    spec = parse_spec(tiny_library, "seq_arrow", "hop1+hop2")
    base = spec.library.base["name_or_path"]

    class Engine:  # what the scorer reads from a started engine: its model config's dtype
        class llm_engine:  # noqa: N801
            class model_config:  # noqa: N801
                dtype = torch.bfloat16

    from transformers import AutoTokenizer

    stub = LorareuseVLLM.__new__(LorareuseVLLM)
    stub.model, stub.tokenizer = Engine, AutoTokenizer.from_pretrained(base)
    scorer = stub._base_scorer(spec, base, {})
    assert next(scorer.model.parameters()).dtype == torch.bfloat16
    assert scorer.tokenizer is stub.tokenizer  # shared, not a second tokenizer


def test_the_scorer_reserve_is_its_weights_in_the_serving_dtype(tmp_path):
    from lorareuse_plugin.models.vllm import scorer_reserve

    (tmp_path / "model.safetensors").write_bytes(b"\0" * 4000)
    (tmp_path / "config.json").write_text(json.dumps({"torch_dtype": "float32"}))
    assert scorer_reserve(tmp_path, total_bytes=100_000, dtype_bytes=2) == pytest.approx(0.02)  # bf16: half
    assert scorer_reserve("org/hub-model", total_bytes=100_000, dtype_bytes=2) == 0.0
