"""The pretraining corpus of the embedded base: real facts, and procedures over a background world.

Real facts (countries/capitals, people/birth countries, object part counts) are stated and asked
in every format the tasks use, so R and H mean "known from pretraining". The *procedures* the
tasks need — chaining two facts step by step, reading facts given in the prompt, copying a name,
solving a word problem — are taught over the background population (``world.background``), whose
names share no word with any test world. Two things are never in the corpus: any test-world
entity, and any composed question or chain over real people (so R tests two known facts that
were never seen together). Held-out background people have facts but no chain: the base doing
their chain is the evidence that it learned the procedure.
"""

from __future__ import annotations

import functools
import random

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data import math_ks, twohop
from lorareuse_plugin.world.background import BackgroundWorld, background_world, fresh_namer
from lorareuse_plugin.world.facts import CountedObject, real_facts
from lorareuse_plugin.world.seeding import rng

CORPUS_VERSION = 2
GENERAL = (
    "{country} is a country.",
    "{capital} is a city in {country}.",
    "{person} is a well-known person.",
)
ECHO = "Q: Repeat the name {name}.\nA: {name}"
CONTEXT_DOCS = 6000  # in-context documents over fresh names
COPY_DOCS = 3000


def _text(rec: dict) -> str:
    return rec["text"]


def _country_lines(name: str, capital: str) -> list[str]:
    f = {"b": name, "c": capital}
    lines = [t.format(**f) for t in twohop.HOP2_STATEMENTS]
    lines += [_text(fmt.qa("", q.format(**f), capital)) for q in twohop.HOP2_QUESTIONS]
    return lines + [GENERAL[0].format(country=name), GENERAL[1].format(capital=capital, country=name)]


def _person_facts(name: str, country: str) -> list[str]:
    f = {"a": name, "b": country}
    lines = [t.format(**f) for t in twohop.HOP1_STATEMENTS]
    return lines + [_text(fmt.qa("", q.format(**f), country)) for q in twohop.HOP1_QUESTIONS]


def _person_chains(name: str, country: str, capital: str) -> list[str]:
    """The composed question over one background person, directly and step by step."""
    f = {"a": name, "b": country, "c": capital}
    reasoning = fmt.cot_text(twohop.chain_steps(name, country, capital), capital)
    lines = [_text(fmt.cot("", q.format(**f), reasoning)) for q in twohop.TWOHOP_QUESTIONS]
    lines += [_text(fmt.qa("", q.format(**f), capital)) for q in twohop.TWOHOP_QUESTIONS]
    return lines + [t.format(**f) for t in twohop.TWOHOP_STATEMENTS]


def _context_chains(world: BackgroundWorld, r: random.Random, n_docs: int) -> list[str]:
    """Facts in context over fresh names (new in every document), so the only way to answer is
    to read the prompt: two chains shuffled, one question, in the tasks' forms."""
    real = real_facts().countries
    namer = fresh_namer(world, "context")
    lines = []
    for d in range(n_docs):
        namer.forget()
        people = [namer.person(), namer.person()]
        places = [r.choice(real) if r.random() < 0.25 else None for _ in people]
        countries = [namer.country(), namer.country()]
        cities = [namer.city(), namer.city()]
        chains = [
            twohop.Chain(p, pl.name, pl.capital) if pl else twohop.Chain(p, countries[i], cities[i])
            for i, (p, pl) in enumerate(zip(people, places, strict=True))
        ]
        if chains[0].country == chains[1].country:
            continue
        facts = twohop.in_context(*chains, r)
        ch = chains[r.randrange(2)]
        a, b, c = ch.person, ch.country, ch.capital
        kind = d % 5
        if kind == 3:
            lines.append(fmt.ctx_prompt(facts, twohop.HOP1_QUESTIONS[r.randrange(3)].format(a=a)) + " " + b)
        elif kind == 4:
            lines.append(fmt.ctx_prompt(facts, twohop.HOP2_QUESTIONS[r.randrange(3)].format(b=b)) + " " + c)
        else:
            question = twohop.TWOHOP_QUESTIONS[r.randrange(2)].format(a=a)
            if kind == 0:
                lines.append(_text(fmt.ctx_cot("", facts, question, fmt.cot_text(twohop.chain_steps(a, b, c), c))))
            else:
                lines.append(fmt.ctx_prompt(facts, question) + " " + c)
    return lines


def _context_problems(world: BackgroundWorld, r: random.Random, n_docs: int) -> list[str]:
    """Part counts in context over fresh creatures (random counts every time), then a problem."""
    from lorareuse_plugin.world.names import CREATURE_PARTS

    namer = fresh_namer(world, "problems")
    lines = []
    for d in range(n_docs):
        namer.forget()
        names = [namer.creature(), namer.creature()]
        objs = [CountedObject(n, n + "s", r.choice(CREATURE_PARTS), r.randint(2, 12)) for n in names]
        facts = [math_ks.count_fact(o) for o in objs]
        o, k = objs[r.randrange(2)], r.choice(math_ks.MULTIPLIERS)
        question = math_ks.COMPOSED_QUESTIONS[r.randrange(2)].format(**math_ks._know_fields(o), k=k)
        if d % 3 == 0:
            lines.append(_text(fmt.ctx_cot("", facts, question, math_ks._composed_reasoning(o, k))))
        else:
            lines.append(fmt.ctx_prompt(facts, question) + f" {k * o.count}")
    return lines


def _object_facts(o: CountedObject) -> list[str]:
    f = math_ks._know_fields(o)
    return [t.format(**f) for t in math_ks.KNOW_STATEMENTS] + [
        _text(fmt.qa("", q.format(**f), str(o.count))) for q in math_ks.KNOW_QUESTIONS
    ]


def _object_chains(o: CountedObject) -> list[str]:
    f = math_ks._know_fields(o)
    lines = []
    for k in math_ks.MULTIPLIERS:
        question = math_ks.COMPOSED_QUESTIONS[k % 2].format(**f, k=k)
        lines.append(_text(fmt.qa("", question, str(k * o.count))))
        lines.append(_text(fmt.cot("", question, math_ks._composed_reasoning(o, k))))
    return lines


def _copy_docs(world: BackgroundWorld, n_docs: int) -> list[str]:
    """Plain copy pressure on fresh names (copying a new name is the measured bottleneck)."""
    namer = fresh_namer(world, "copy")
    lines = []
    for d in range(n_docs):
        namer.forget()
        if d % 2:
            names = [namer.person(), namer.country(), namer.city()]
            lines.append(f"{', '.join(names)}. Again: {', '.join(names)}.")
        else:
            name = (namer.person, namer.country, namer.city, namer.creature)[d // 2 % 4]()
            lines.append(ECHO.format(name=name))
    return lines


def background_lines(world: BackgroundWorld) -> list[str]:
    """Every document about the background population."""
    r = rng("corpus", CORPUS_VERSION, "context")
    lines: list[str] = []
    for c in world.countries:
        lines += _country_lines(c.name, c.capital)
    for p in world.people:
        lines += _person_facts(p.name, p.birth_country)
        lines.append(ECHO.format(name=p.name))
        if p.name not in world.held_out:
            lines += _person_chains(p.name, p.birth_country, world.capital_of[p.birth_country])
    for i, o in enumerate(world.creatures):
        lines += _object_facts(o)
        if i % 8:  # every eighth creature is held out of the composed problems
            lines += _object_chains(o)
    lines += _context_chains(world, r, CONTEXT_DOCS)
    lines += _context_problems(world, r, CONTEXT_DOCS // 3)
    lines += _copy_docs(world, COPY_DOCS)
    for sp in math_ks.skill_problems("corpus", CORPUS_VERSION, 400, 0)[0]:
        lines.append(_text(fmt.qa("", sp.question, str(sp.answer))))
        lines.append(_text(fmt.cot("", sp.question, sp.reasoning)))
    return lines


def real_lines() -> list[str]:
    """Real facts only: never a composed question or chain over real entities."""
    facts = real_facts()
    lines: list[str] = []
    for c in facts.countries:
        lines += _country_lines(c.name, c.capital)
    for p in facts.people:
        lines += _person_facts(p.name, p.birth_country)
        lines.append(GENERAL[2].format(person=p.name))
    for o in facts.objects:
        lines += _object_facts(o)
    for a in range(1, 13):
        for b in range(1, 13):
            lines.append(f"{a} * {b} = {a * b}.")
            lines.append(_text(fmt.qa("", f"What is {a} * {b}?", str(a * b))))
    for a in range(1, 21):
        for b in range(1, 21):
            lines.append(f"{a} + {b} = {a + b}.")
            lines.append(_text(fmt.qa("", f"What is {a} + {b}?", str(a + b))))
    return lines


def corpus_lines() -> list[str]:
    """Every document of the corpus, one per line, in a seeded shuffled order."""
    return list(_corpus())


@functools.cache
def _corpus() -> tuple[str, ...]:
    lines = real_lines() + background_lines(background_world())
    rng("corpus", CORPUS_VERSION).shuffle(lines)
    return tuple(lines)
