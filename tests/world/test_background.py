"""The background population: disjoint from every test world by construction, and what the
corpus says (and never says) about it."""

import re

import pytest

from lorareuse_plugin.base.corpus import corpus_lines
from lorareuse_plugin.data import twohop
from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.data.families import FAMILIES
from lorareuse_plugin.world import real_facts
from lorareuse_plugin.world.background import background_world
from lorareuse_plugin.world.names import BACKGROUND, TEST, name_space

WORLDS = [(f.name, fam.value) for f in FAMILIES.values() for fam in f.familiarities] + [("math_ss", None)]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_test_world_shares_a_word_with_the_background(seed):
    world = background_world()
    assert all(name_space(w) == BACKGROUND for w in world.words)
    vocabulary = real_facts().vocabulary
    for family, fam in WORLDS:
        ds = build_dataset(make_spec(family, fam, seed))
        words = set()
        for split in ds.splits.values():
            for rec in split:
                words |= _words(rec.get("text") or rec["ctx_prompt"] + " " + rec["cot"])
        fictional = {w for w in words if name_space(w) == TEST} - vocabulary
        assert fictional, f"{family} {fam}: no fictional word found (is the world generated?)"
        assert not (words & world.words), f"{family} {fam} seed {seed} shares {sorted(words & world.words)[:5]}"


def test_background_is_large_and_has_held_out_people():
    world = background_world()
    assert len(world.people) >= 1000 and len(world.countries) >= 200
    assert len(world.held_out_people) >= 150
    assert len({p.name for p in world.people}) == len(world.people)


def test_corpus_has_no_composed_real_question_and_no_held_out_chain():
    lines = corpus_lines()
    text = "\n".join(lines)
    facts = real_facts()
    for p in facts.people:
        capital = facts.capital_of[p.birth_country]
        for q in twohop.TWOHOP_QUESTIONS:
            assert q.format(a=p.name) not in text
        assert not [line for line in lines if p.name in line and re.search(rf"(?<!\w){re.escape(capital)}(?!\w)", line)]
    world = background_world()
    held = {p.name: world.capital_of[p.birth_country] for p in world.held_out_people}
    chained = [line for line in lines if "capital" in line]
    for name, capital in held.items():
        assert not [line for line in chained if name in line and capital in line], name
        assert any(f"{name} was born in" in line for line in lines)  # the facts are there
    some = world.chained_people[0]
    assert any(twohop.TWOHOP_QUESTIONS[0].format(a=some.name) in line for line in lines)
