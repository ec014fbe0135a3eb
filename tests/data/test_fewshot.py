"""--num_fewshot examples come from entities no test world contains, never from the test split."""

import re

import pytest

from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.data.families import FAMILIES
from lorareuse_plugin.data.fewshot import fewshot_docs

SEEDS = (0, 1, 2, 3)


def _entities(family: str, split: str, doc: dict) -> set[str]:
    """The entities a few-shot document is about (names, countries, cities, creatures, items)."""
    q = doc["question"]
    if family == "twohop":
        found = re.findall(r"where (.+) was born|was (.+) born|capital of (.+)\?", q)
        names = {x for groups in found for x in groups if x}
        return names | {doc["answer"], doc["intermediate"]} - {""}
    if family == "math_ks" and split == "probe_skill":  # "Each jar has 4 ploorkoms. …": the item word
        return set(re.findall(r"has \d+ (\w+)\.", q))
    if family == "math_ks":
        return set(re.findall(r"(?:does an? |do \d+ )(\w+?)s? have", q))
    return {q.split()[0], *re.findall(r"\d+ more (\w+)|with \d+ (\w+) in each|has \d+ (\w+) and", q)[0]} - {""}


def _world_text(family, familiarity, seed) -> str:
    ds = build_dataset(make_spec(family.name, familiarity, seed))
    return "\n".join(str(v) for split in ds.splits.values() for rec in split for v in rec.values())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fewshot_entities_occur_in_no_test_world(family):
    fam = FAMILIES[family]
    docs = {split: fewshot_docs(family, split) for split in fam.eval_splits}
    entities = {e for split, ds in docs.items() for d in ds for e in _entities(family, split, d)}
    assert len(entities) >= 8, entities  # the extraction found the names
    for familiarity in [f.value for f in fam.familiarities] or [None]:
        for seed in SEEDS:
            text = _world_text(fam, familiarity, seed)
            shared = sorted(e for e in entities if re.search(rf"(?<!\w){re.escape(e)}(?!\w)", text))
            assert not shared, (family, familiarity, seed, shared)
    for split, ds in docs.items():  # the same document format as the split it stands in for
        test_doc = build_dataset(make_spec(family, (fam.familiarities[0].value if fam.familiarities else None))).splits[
            split
        ][0]
        assert all(set(d) == set(test_doc) and d["answer"] in d["choices"] for d in ds), split


def test_lm_eval_draws_fewshot_examples_from_the_fewshot_split(test_base):
    """A real lm-eval run with --num_fewshot 3: every prompt's examples are the few-shot split's,
    and none mentions an entity of the item it precedes."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import lorareuse_plugin

    tm = TaskManager(include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False)
    tasks = ["lorareuse_twohop_f_cot", "lorareuse_hop1_r", "lorareuse_math_ks_f_ctx"]
    out = simple_evaluate(
        model="hf",
        model_args=f"pretrained={test_base},dtype=float32,device=cpu",
        tasks=tasks,
        task_manager=tm,
        num_fewshot=3,
        limit=4,
        log_samples=True,
        bootstrap_iters=0,
    )
    for task, split, family, field in (
        ("lorareuse_twohop_f_cot", "test", "twohop", "cot_prompt"),
        ("lorareuse_hop1_r", "probe_hop1", "twohop", "prompt"),
        ("lorareuse_math_ks_f_ctx", "test", "math_ks", "ctx_prompt"),
    ):
        shots = fewshot_docs(family, split)[:3]
        for sample in out["samples"][task]:
            prompt = sample["arguments"][0][0]
            assert all(s["question"] in prompt for s in shots), prompt
            head = prompt[: prompt.rindex(sample["doc"][field])]  # the examples before the item itself
            item = _entities(family, split, sample["doc"]) - {""}
            assert not any(re.search(rf"(?<!\w){re.escape(e)}(?!\w)", head) for e in item), (item, head)
