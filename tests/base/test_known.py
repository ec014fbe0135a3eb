"""``lorareuse familiarity``: the embedded base knows its whole table (every real fact is in its corpus,
stated several ways); the verdict rule and the flexible match are the tasks' own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorareuse_plugin.base.known import REPORT, fact_probes, familiarity_report, flexible_correct
from lorareuse_plugin.errors import ConfigError


def test_every_real_fact_is_probed_with_every_paraphrase_and_right_type_choices() -> None:
    from lorareuse_plugin.world import real_facts

    probes = fact_probes()
    facts = real_facts()
    assert len(probes) == len(facts.people) + len(facts.countries) + len(facts.objects)
    for p in probes:
        assert len(p.questions) == 3 and len(set(p.questions)) == 3
        assert p.choices[0] == p.answer and p.answer not in p.choices[1:] and len(set(p.choices)) == 4


@pytest.mark.parametrize(
    "response,answer,expected",
    [
        ("The capital of Japan is Tokyo.", "Tokyo", True),
        (" Tokyo", "Tokyo", True),
        ("The capital of Japan is Japan.", "Tokyo", False),
        ("Japan is a country in Asia.", "Tokyo", False),
    ],
)
def test_flexible_match_is_the_tasks_flexible_filter(response: str, answer: str, expected: bool) -> None:
    assert flexible_correct(response, answer) is expected


@pytest.mark.slow
def test_the_embedded_base_knows_its_whole_table(tmp_path: Path) -> None:
    report = familiarity_report("default", tmp_path, log=lambda m: None)
    written = json.loads((tmp_path / REPORT).read_text())
    assert written["summary"] == report["summary"]
    for relation, s in report["summary"].items():
        assert s["known"] == s["n"], (relation, [f for f in report["facts"] if not f["known"]][:3])
    # so worlds built from what it knows are the worlds we ship (R and H, byte for byte)
    from lorareuse_plugin.data.build import build_dataset, make_spec

    for familiarity in ("R", "H"):
        known = make_spec("twohop", familiarity, 0, known=str(tmp_path / REPORT))
        assert known.known is not None and known.known.count("capital") == 169
        assert build_dataset(known).hashes == build_dataset(make_spec("twohop", familiarity, 0)).hashes


def test_a_bad_limit_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--limit 0: probe at least 1 fact"):
        familiarity_report("default", tmp_path / "out", limit=0, log=lambda m: None)
    assert not (tmp_path / "out").exists()


def test_chat_probes_are_the_user_turn_lm_eval_would_send() -> None:
    from lorareuse_plugin.base.known import probe_prompt
    from lorareuse_plugin.base.tokenizer import train_tokenizer

    tok = train_tokenizer(["Q: Where was Mira Volk born?\nA: Zelandia"] * 10, vocab_size=300)
    plain = probe_prompt(tok, "Where was Mira Volk born?", chat=False)
    assert plain == "Q: Where was Mira Volk born?\nA:"
    chat = tok.apply_chat_template([{"role": "user", "content": plain}], tokenize=False, add_generation_prompt=True)
    assert probe_prompt(tok, "Where was Mira Volk born?", chat=True) == chat != plain
    tok.chat_template = None
    with pytest.raises(ConfigError, match="no chat template; leave out --chat"):
        probe_prompt(tok, "Where was Mira Volk born?", chat=True)
