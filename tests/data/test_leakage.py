import dataclasses

import pytest

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.data.families import FAMILIES
from lorareuse_plugin.data.leakage import check_leakage, find_leaks
from lorareuse_plugin.errors import LeakageError

ALL = [(f.name, fam.value) for f in FAMILIES.values() for fam in f.familiarities] + [("math_ss", None)]


@pytest.mark.parametrize("family,fam", ALL)
def test_generated_data_has_no_leak(family, fam):
    ds = build_dataset(make_spec(family, fam))
    assert find_leaks(ds.family, ds.data) == []


def _planted(ds, split: str, record: dict):
    splits = dict(ds.data.splits)
    splits[split] = splits[split] + [record]
    return dataclasses.replace(ds.data, splits=splits)


@pytest.mark.parametrize("family,fam", ALL)
def test_a_planted_test_question_is_caught(family, fam):
    ds = build_dataset(make_spec(family, fam))
    doc = ds.splits["test"][3]
    member = ds.family.members[0]
    leaky = _planted(ds, member, fmt.qa("planted", doc["question"], doc["answer"]))
    leaks = find_leaks(ds.family, leaky)
    assert [(leak.split, leak.record_id) for leak in leaks] == [(member, "planted")]
    with pytest.raises(LeakageError, match="planted"):
        check_leakage(ds.family, leaky)


@pytest.mark.parametrize("fam", ["F", "H", "R"])
def test_a_planted_answer_pair_in_other_words_is_caught(fam):
    ds = build_dataset(make_spec("twohop", fam))
    doc = ds.splits["test"][0]
    person = doc["question"].removeprefix("What is the capital of the country where ").removesuffix(" was born?")
    text = f"People say {person} grew up near {doc['answer']}."
    leaky = _planted(ds, "target", fmt.statement("pair", text))
    assert [leak.record_id for leak in find_leaks(ds.family, leaky)] == ["pair"]
    assert find_leaks(ds.family, leaky, exempt=("target",)) == []


def test_math_ks_answer_pair_is_caught_but_not_partial_matches():
    ds = build_dataset(make_spec("math_ks", "F"))
    keys = ds.data.leak_keys[0]
    ok = _planted(ds, "skill", fmt.statement("near", f"1{keys[0]} make {keys[1]}0 in all."))
    assert find_leaks(ds.family, ok) == []
    bad = _planted(ds, "skill", fmt.statement("pair", f"{keys[0]} make {keys[1]} in all."))
    assert [leak.record_id for leak in find_leaks(ds.family, bad)] == ["pair"]


@pytest.mark.parametrize("family,fam", [("twohop", "F"), ("twohop", "H"), ("twohop", "R"), ("math_ks", "F")])
def test_ac_holds_exactly_the_test_composed_facts_and_nothing_else(family, fam):
    ds = build_dataset(make_spec(family, fam))
    assert "ac" in ds.family.contaminated and "ac" in ds.family.train_splits
    test = ds.splits["test"]
    ac = ds.splits["ac"]
    if family == "twohop":
        person = lambda q: q.removeprefix("What is the capital of the country where ").removesuffix(" was born?")  # noqa: E731
        pairs = {(person(d["question"]), d["answer"]) for d in test}
        stated = set()
        for rec in ac:
            hits = [(a, c) for a, c in pairs if a in rec["text"] and c in rec["text"]]
            assert len(hits) == 1, rec
            stated |= set(hits)
            bridge = next(d["intermediate"] for d in test if person(d["question"]) == hits[0][0])
            assert bridge not in rec["text"], f"ac record states the bridge: {rec}"
        assert stated == pairs
    else:
        questions = {d["question"]: d["answer"] for d in test}
        asked = {rec["prompt"].removeprefix("Q: ").removesuffix("\nA:"): rec["completion"].strip() for rec in ac}
        assert {q: a for q, a in asked.items() if q in questions} == questions
        for q, a in asked.items():  # the second phrasing of each test question, same answer
            assert q in questions or a in questions.values()
        assert not any("has" in rec["text"] for rec in ac)  # no part count (the knowledge hop)
    # allowed by name only: the same records in another expert are a leak
    leaky = _planted(ds, "target", dict(ac[0], id="moved"))
    assert [leak.record_id for leak in find_leaks(ds.family, leaky)] == ["moved"]


@pytest.mark.parametrize("split", ["hop1", "hop2", "target", "union", "oracle"])
def test_a_planted_leak_in_any_other_expert_fails_the_check(split):
    ds = build_dataset(make_spec("twohop", "F"))
    doc = ds.splits["test"][5]
    leaky = _planted(ds, split, fmt.qa("planted", doc["question"], doc["answer"]))
    with pytest.raises(LeakageError, match="planted"):
        check_leakage(ds.family, leaky)
