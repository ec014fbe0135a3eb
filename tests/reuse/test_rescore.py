"""rescore: every candidate answers, the rescorer picks one per request (real tiny models)."""

from pathlib import Path

import pytest

from lorareuse_plugin.reuse.rescore import candidates, label
from tests.conftest import tiny_task_metadata

TINY = {
    "layers": 1,
    "hidden": 32,
    "heads": 2,
    "intermediate": 64,
    "chains": 20,
    "steps": 3,
    "head_chains": 10,
    "head_steps": 2,
}


@pytest.fixture(scope="module")
def tiny_rescorer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plumbing only: a one-layer rescorer trained for three steps."""
    from lorareuse_plugin.rescore.model import RescorerConfig, build_rescorer

    return build_rescorer(
        RescorerConfig(**TINY), out=tmp_path_factory.mktemp("rescorer") / "r", progress=False, log=lambda m: None
    )


def test_candidates_are_each_expert_then_their_mean():
    assert candidates(("hop1", "hop2")) == (("hop1",), ("hop2",), ("hop1", "hop2"))
    assert candidates(("hop1",)) == (("hop1",),)
    assert [label(c) for c in candidates(("a", "b"))] == ["a", "b", "delta_mean[a+b]"]


def _requests(task: str, n: int):
    from lm_eval.api.instance import Instance

    from lorareuse_plugin.data.build import build_dataset, make_spec

    meta = tiny_task_metadata()
    docs = build_dataset(
        make_spec("twohop", "F", meta["lorareuse_seed"], meta["lorareuse_n_test"], meta["lorareuse_n_target"], None)
    ).splits["test"]
    gen = {"until": ["\n"], "max_gen_toks": 24, "do_sample": False}
    return [
        Instance("generate_until", d, (d["cot_prompt"], dict(gen)), idx=0, metadata=(task, i, 1))
        for i, d in enumerate(docs[:n])
    ]


def test_rescore_serves_one_candidates_answer_per_request_and_logs_its_cost(tiny_library, tiny_rescorer):
    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.rescore.rule import check

    kw = {"device": "cpu", "dtype": "float32", "library": str(tiny_library), "batch_size": 4}
    singles = {}
    for c in candidates(("hop1", "hop2")):
        method = f"single:{c[0]}" if len(c) == 1 else "delta_mean"
        lm = LorareuseHFLM(method=method, experts="+".join(c), **kw)
        singles[label(c)] = lm.generate_until(_requests("lorareuse_twohop_f_cot", 4))
    lm = LorareuseHFLM(method="rescore", experts="hop1+hop2", rescorer=str(tiny_rescorer), score="rule", **kw)
    reqs = _requests("lorareuse_twohop_f_cot", 4)
    out = lm.generate_until(reqs)
    for i, r in enumerate(reqs):
        chosen = lm.route_log[("lorareuse_twohop_f_cot", i)]
        assert out[i] == singles[chosen][i]
        faithful = {k: bool((v := check(r.args[0], a[i])) and v.faithful) for k, a in singles.items()}
        assert faithful[chosen] == any(faithful.values())  # the rule's pick: a faithful answer when there is one
    stats = lm.get_model_info()["rescore"] if "rescore" in lm.get_model_info() else lm._extra_info["rescore"]
    assert stats["requests"] == 4 and stats["candidate_generations"] == 12 and stats["score"] == "rule"
