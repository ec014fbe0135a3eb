"""Worlds built from the facts a base knows: R draws people with both hops known, H countries with a
known capital; the record is self-contained and the world rebuilds from it byte for byte."""

import json
from pathlib import Path

import pytest

from lorareuse_plugin.data import twohop
from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.data.fewshot import fewshot_docs
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world import real_facts
from lorareuse_plugin.world.known import parse_known, read_known


def _report(tmp_path: Path, people: int, capitals: int, *, half_known: int = 0) -> Path:
    """A familiarity report in ``lorareuse familiarity``'s format: the first ``people`` people's
    birth countries known, the first ``capitals`` countries' capitals known; ``half_known`` more people
    whose birth country is known but whose country's capital is not."""
    facts = real_facts()
    known_capitals = {c.name for c in facts.countries[:capitals]}
    rows = [
        {"relation": "capital", "subject": c.name, "answer": c.capital, "known": c.name in known_capitals}
        for c in facts.countries
    ]
    both = [p for p in facts.people if p.birth_country in known_capitals][:people]
    half = [p for p in facts.people if p.birth_country not in known_capitals][:half_known]
    rows += [
        {"relation": "birth_country", "subject": p.name, "answer": p.birth_country, "known": p in both or p in half}
        for p in facts.people
    ]
    path = tmp_path / "familiarity.json"
    path.write_text(json.dumps({"base": {"name_or_path": "/m/smol", "weights_hash": "abc"}, "facts": rows}))
    return path


def test_an_r_world_draws_only_people_whose_both_hops_the_base_knows(tmp_path: Path) -> None:
    report = _report(tmp_path, people=70, capitals=60, half_known=30)
    known = read_known(report)
    spec = make_spec("twohop", "R", 0, 40, 20, known=str(report))
    test, target, _ = twohop.chains(spec.familiarity, 0, spec.sizes, spec.known)
    assert len(test) == 40 and len(target) == 20
    for c in test + target:
        assert known.knows("birth_country", c.person) and known.knows("capital", c.country), c
    ds = build_dataset(spec)
    assert ds.hashes["test"] != build_dataset(make_spec("twohop", "R", 0, 40, 20)).hashes["test"]
    assert {d["intermediate"] for d in ds.splits["test"]} <= {subject for _, subject in known.facts}
    with pytest.raises(ConfigError, match=r"twohop R has 70 real people whose birth country and its capital smol"):
        build_dataset(make_spec("twohop", "R", 0, 60, 20, known=str(report)))


def test_the_record_rebuilds_the_same_world_without_the_report_file(tmp_path: Path) -> None:
    report = _report(tmp_path, people=70, capitals=60)
    spec = make_spec("twohop", "R", 0, 40, 20, known=str(report))
    record = json.loads(json.dumps(spec.to_json()))  # as a manifest / splits.json holds it
    assert record["known"]["base"]["weights_hash"] == "abc" and len(record["known"]["report_sha256"]) == 64
    assert "birth_country:Albert Einstein" in record["known"]["facts"]
    report.unlink()
    again = make_spec("twohop", "R", 0, 40, 20, known=record["known"])
    assert again == spec and build_dataset(again).hashes == build_dataset(spec).hashes
    assert "known" not in make_spec("twohop", "R", 0, 40, 20).to_json()  # old records stay as they were


def test_an_h_world_bridges_only_through_known_capitals_and_refuses_too_few(tmp_path: Path) -> None:
    known = read_known(_report(tmp_path, people=0, capitals=40))
    spec = make_spec("twohop", "H", 0, 30, 9, known=known)
    test, target, _ = twohop.chains(spec.familiarity, 0, spec.sizes, spec.known)
    assert all(known.knows("capital", c.country) for c in test + target)
    with pytest.raises(
        ConfigError, match="needs at least 22 real countries whose capital the base knows; smol knows 5"
    ):
        build_dataset(make_spec("twohop", "H", 0, 30, 9, known=read_known(_report(tmp_path, 0, 5))))


def test_every_known_fact_gives_the_world_without_known_facts(tmp_path: Path) -> None:
    """A base that knows the whole table (the embedded one does) changes nothing."""
    report = _report(tmp_path, people=264, capitals=169)
    assert read_known(report).count("birth_country") == 264
    for familiarity in ("R", "H"):
        plain = build_dataset(make_spec("twohop", familiarity, 1))
        assert build_dataset(make_spec("twohop", familiarity, 1, known=str(report))).hashes == plain.hashes


def test_fewshot_examples_of_a_known_world_avoid_its_people_and_bridges(tmp_path: Path) -> None:
    spec = make_spec("twohop", "R", 0, 40, 20, known=str(_report(tmp_path, people=70, capitals=60)))
    test, target, _ = twohop.chains(spec.familiarity, 0, spec.sizes, spec.known)
    used = {x for c in test + target for x in (c.person, c.country, c.capital)}
    for split in ("test", "probe_hop1", "probe_hop2"):
        for d in fewshot_docs("twohop", split, spec=spec):
            assert d["answer"] not in used and not any(u in d["question"] for u in used if len(u) > 3), d


def test_known_facts_are_refused_where_there_is_nothing_to_choose(tmp_path: Path) -> None:
    report = str(_report(tmp_path, people=70, capitals=60))
    with pytest.raises(ConfigError, match="twohop F has none to choose"):
        make_spec("twohop", "F", 0, known=report)
    with pytest.raises(ConfigError, match="math_ks R has none to choose"):
        make_spec("math_ks", "R", 0, known=report)
    with pytest.raises(ConfigError, match="neither a familiarity report path nor a recorded set"):
        parse_known(42)


def test_lm_eval_tasks_take_the_known_facts_as_metadata(tmp_path: Path) -> None:
    from lorareuse_plugin.data.lmeval import load_docs

    report = _report(tmp_path, people=70, capitals=60)
    known = read_known(report)
    docs = load_docs(
        lorareuse_family="twohop",
        lorareuse_familiarity="R",
        lorareuse_split="probe_hop1",
        lorareuse_n_test=40,
        lorareuse_n_target=20,
        lorareuse_known=str(report),
    )
    assert len(docs["test"]) == 40
    assert all(
        known.knows("birth_country", d["question"][len("In which country was ") : -len(" born?")]) for d in docs["test"]
    )


def test_familiarity_says_how_large_a_world_its_known_facts_allow(tmp_path: Path) -> None:
    known = read_known(_report(tmp_path, people=70, capitals=60, half_known=30))
    assert twohop.known_world_capacity(known) == (70, 60)  # the 30 half-known people do not count
