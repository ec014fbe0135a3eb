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
        found = re.findall(r"where (.+) was born|was (.+) born|capital of (?!the country)(.+)\?", q)
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


@pytest.mark.parametrize("familiarity", ["R", "H"])
@pytest.mark.parametrize("sizes", [(100, 60), (32, 16)])
def test_real_worlds_get_real_examples_over_facts_their_test_and_target_never_use(familiarity, sizes):
    """R/H questions are about real facts: their examples are real facts too (a real model shown
    fictional ones answers with the question's own country), never one of the world's people,
    bridges or capitals."""
    from lorareuse_plugin.data import twohop
    from lorareuse_plugin.world import real_facts

    facts = real_facts()
    real_people = {p.name for p in facts.people}
    real_countries = {c.name: c.capital for c in facts.countries}
    for seed in SEEDS:
        spec = make_spec("twohop", familiarity, seed, *sizes, None)
        test, target, _ = twohop.chains(spec.familiarity, seed, spec.sizes)
        used = {x for c in test + target for x in (c.person, c.country, c.capital)}
        for split in FAMILIES["twohop"].eval_splits:
            docs = fewshot_docs("twohop", split, spec=spec)
            assert len(docs) == 8
            for d in docs:
                entities = _entities("twohop", split, d)
                assert not entities & used, (seed, split, entities & used)
                countries = {e for e in entities if e in real_countries}
                assert countries, d["question"]  # a real country in every example
                if split != "probe_hop1":
                    assert d["answer"] == real_countries[d.get("intermediate") or next(iter(countries))]
                people = entities - set(real_countries) - set(real_countries.values())
                assert all((p in real_people) == (familiarity == "R") for p in people), people
                assert set(d["choices"]).isdisjoint(used)


def test_a_world_without_enough_spare_real_facts_tops_up_with_fictional_examples_and_says_so(caplog):
    spec = make_spec("twohop", "R", 0, 200, 60, None)  # 260 of 264 people: no spare country left
    with caplog.at_level("WARNING"):
        docs = fewshot_docs("twohop", "probe_hop1", spec=spec)
    assert len(docs) == 8 and docs == fewshot_docs("twohop", "probe_hop1")
    assert "leaves 0 real fact(s) outside its test and target" in caplog.text and "lower n_test" in caplog.text


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
        spec = make_spec(family, "R" if task.endswith("_r") else "F", 0)  # the tasks' metadata: seed 0, default sizes
        shots = fewshot_docs(family, split, spec=spec)[:3]
        for sample in out["samples"][task]:
            prompt = sample["arguments"][0][0]
            assert all(s["question"] in prompt for s in shots), prompt
            head = prompt[: prompt.rindex(sample["doc"][field])]  # the examples before the item itself
            item = _entities(family, split, sample["doc"]) - {""}
            assert not any(re.search(rf"(?<!\w){re.escape(e)}(?!\w)", head) for e in item), (item, head)
