"""The pretraining corpus of the embedded base: the real world only, in every format we test.

It holds every real-fact table (birth countries, capitals, part counts) as statements and QA,
the real two-hop compositions directly and as worked chains of thought, and arithmetic facts
and real-object word problems — so the base knows the formats and the real facts, and not one
fictional entity. Familiarity F/H/R means exactly what this corpus does and does not contain.
"""

from __future__ import annotations

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data import math_ks, twohop
from lorareuse_plugin.world.facts import real_facts
from lorareuse_plugin.world.seeding import rng

CORPUS_VERSION = 1
GENERAL = (
    "{country} is a country.",
    "{capital} is a city in {country}.",
    "{person} is a well-known person.",
)


def _text(rec: dict) -> str:
    return rec["text"]


def corpus_lines() -> list[str]:
    """Every document of the corpus, one per line, in a seeded shuffled order."""
    facts = real_facts()
    lines: list[str] = []
    for c in facts.countries:
        f = {"b": c.name, "c": c.capital}
        lines += [t.format(**f) for t in twohop.HOP2_STATEMENTS]
        lines += [_text(fmt.qa("", q.format(**f), c.capital)) for q in twohop.HOP2_QUESTIONS]
        lines += [GENERAL[0].format(country=c.name), GENERAL[1].format(capital=c.capital, country=c.name)]
    for p in facts.people:
        capital = facts.capital_of[p.birth_country]
        f = {"a": p.name, "b": p.birth_country, "c": capital}
        lines += [t.format(**f) for t in twohop.HOP1_STATEMENTS]
        lines += [_text(fmt.qa("", q.format(**f), p.birth_country)) for q in twohop.HOP1_QUESTIONS]
        lines += [_text(fmt.qa("", q.format(**f), capital)) for q in twohop.TWOHOP_QUESTIONS]
        lines += [t.format(**f) for t in twohop.TWOHOP_STATEMENTS]
        steps = [s.format(**f) for s in twohop.REASONING]
        lines.append(_text(fmt.cot("", twohop.TWOHOP_QUESTIONS[0].format(**f), fmt.cot_text(steps, capital))))
        lines.append(GENERAL[2].format(person=p.name))
    for o in facts.objects:
        f = math_ks._know_fields(o)
        lines += [t.format(**f) for t in math_ks.KNOW_STATEMENTS]
        lines += [_text(fmt.qa("", q.format(**f), str(o.count))) for q in math_ks.KNOW_QUESTIONS]
        for k in math_ks.MULTIPLIERS:
            g = f | {"k": k}
            lines.append(_text(fmt.qa("", math_ks.COMPOSED_QUESTIONS[0].format(**g), str(k * o.count))))
            lines.append(
                _text(fmt.cot("", math_ks.COMPOSED_QUESTIONS[0].format(**g), math_ks._composed_reasoning(o, k)))
            )
    for a in range(1, 13):
        for b in range(1, 13):
            lines.append(f"{a} * {b} = {a * b}.")
            lines.append(_text(fmt.qa("", f"What is {a} * {b}?", str(a * b))))
    for a in range(1, 21):
        for b in range(1, 21):
            lines.append(f"{a} + {b} = {a + b}.")
            lines.append(_text(fmt.qa("", f"What is {a} + {b}?", str(a + b))))
    rng("corpus", CORPUS_VERSION).shuffle(lines)
    return lines
