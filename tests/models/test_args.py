"""The backend key snapshots match lm-eval's live signatures; typos are refused, real keys pass."""

import inspect

import pytest

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.models.args import HF_KEYS, VLLM_KEYS, check_model_arg_keys


def _init_keys(cls) -> set[str]:
    return {p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")}


def test_the_hf_snapshot_is_lm_evals_signature():
    from lm_eval.models.huggingface import HFLM

    assert _init_keys(HFLM) == HF_KEYS


def test_the_vllm_snapshot_is_lm_evals_signature():
    pytest.importorskip("vllm")
    import importlib

    importlib.import_module("lorareuse_plugin.models.vllm")  # first: the version shim lm-eval's module needs
    vllm_lm = importlib.import_module("lm_eval.models.vllm_causallms").VLLM

    assert _init_keys(vllm_lm) == VLLM_KEYS


@pytest.mark.parametrize(("key", "meant"), [("metod", "method"), ("expert", "experts"), ("top-k", "top_k")])
def test_a_near_miss_is_refused_with_the_key_meant(key, meant):
    with pytest.raises(ConfigError, match=f"unknown model_args key '{key}': did you mean {meant}="):
        check_model_arg_keys("lorareuse-hf", {key: "x"})


def test_keys_close_to_none_pass_on_to_the_backend():
    check_model_arg_keys("lorareuse-hf", {"device_map": "auto", "attn_implementation": "sdpa", "method": "svd"})
    check_model_arg_keys("lorareuse-vllm", {"gpu_memory_utilization": 0.8, "max_lora_rank": 16})
