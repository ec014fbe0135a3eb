import re

import pytest

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world import Familiarity, FictionalNamer, real_facts
from lorareuse_plugin.world.seeding import rng


def test_fact_tables_meet_minimum_sizes_and_are_consistent():
    facts = real_facts()
    assert len(facts.countries) >= 60
    assert len(facts.people) >= 60
    assert len(facts.objects) >= 30
    assert len({c.name for c in facts.countries}) == len(facts.countries)
    for p in facts.people:
        assert p.birth_country in facts.capital_of
    for c in facts.countries:  # no answer-in-question shortcut
        assert c.capital.lower() not in c.name.lower() and c.name.lower() not in c.capital.lower()
    for o in facts.objects:
        assert o.count >= 1


@pytest.mark.parametrize("kind", ["person", "country", "city", "creature"])
def test_fictional_names_are_pronounceable_unique_and_never_real(kind):
    namer = FictionalNamer(rng("test", kind))
    names = [getattr(namer, kind)() for _ in range(300)]
    assert len(set(names)) == len(names)
    vocab = real_facts().vocabulary
    for name in names:
        assert re.fullmatch(r"[A-Za-z]+( [A-Za-z]+)?", name), name
        for word in re.findall(r"[a-z]+", name.lower()):
            assert word not in vocab, name
            assert re.search(r"[aeiou]", word), name  # pronounceable: every word has a vowel


def test_one_namer_never_reuses_a_word_across_kinds():
    namer = FictionalNamer(rng("test", "mixed"))
    words = []
    for _ in range(100):
        for kind in ("person", "country", "city", "creature"):
            words += getattr(namer, kind)().lower().split()
    assert len(words) == len(set(words))


def test_namer_is_a_pure_function_of_the_seed():
    a = FictionalNamer(rng("x", 1))
    b = FictionalNamer(rng("x", 1))
    c = FictionalNamer(rng("x", 2))
    first = [a.person() for _ in range(20)]
    assert first == [b.person() for _ in range(20)]
    assert first != [c.person() for _ in range(20)]


def test_familiarity_parse():
    assert Familiarity.parse("f") is Familiarity.F
    assert Familiarity.parse("real") is Familiarity.R
    with pytest.raises(ConfigError, match="unknown familiarity 'X'"):
        Familiarity.parse("X")
    with pytest.raises(ConfigError, match="not defined for this family"):
        Familiarity.parse("H", (Familiarity.F, Familiarity.R))
