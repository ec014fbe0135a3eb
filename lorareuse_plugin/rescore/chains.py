"""Worked chains of every family, faithful and perturbed, over entities no test world contains.

A chain is a question and its sentences in the tasks' CoT format, the last one "So the answer is
X.". The rescorer is pretrained on faithful chains of *background* entities (the base corpus's name
space, which shares no word with any test world, plus the real-fact tables) and on the real facts;
it is judged on held-out chains of fresh background names and on the test worlds' own gold chains.

An unfaithful chain replaces one sentence with the same sentence of another chain of its family
(another text): at the first sentence that swaps the subject, in the middle it changes the bridge,
at the end the answer is no longer the chain's conclusion. Every sentence of our chains is
determined by the question and the sentences before it except the first fact's value, so a
different sentence there always breaks the chain — the labels hold by construction.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data import math_ks, math_ss, twohop
from lorareuse_plugin.rescore.rule import sentences
from lorareuse_plugin.world.background import background_world, fresh_namer
from lorareuse_plugin.world.facts import CountedObject, real_facts
from lorareuse_plugin.world.names import CREATURE_PARTS

PERTURBATIONS = ("subject swapped", "bridge changed", "answer is not the chain's conclusion")


@dataclass(frozen=True)
class Chain:
    family: str
    question: str
    sentences: tuple[str, ...]
    faithful: bool = True
    perturbation: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def _answer_sentence(answer: object) -> str:
    return fmt.cot_text([], str(answer))


def _twohop(r: random.Random, namer) -> Chain:
    person = namer.person()
    if r.random() < 0.25:
        c = r.choice(real_facts().countries)
        country, capital = c.name, c.capital
    else:
        country, capital = namer.country(), namer.city()
    question = r.choice(twohop.TWOHOP_QUESTIONS).format(a=person)
    return Chain("twohop", question, (*twohop.chain_steps(person, country, capital), _answer_sentence(capital)))


def _math_ks(r: random.Random, namer) -> Chain:
    if r.random() < 0.25:
        o = r.choice(real_facts().objects)
    else:
        name = namer.creature()
        o = CountedObject(name, name + "s", r.choice(CREATURE_PARTS), r.randint(2, 12))
    k = r.randint(2, 9)
    question = r.choice(math_ks.COMPOSED_QUESTIONS).format(part=o.part, k=k, p=o.plural)
    steps = (math_ks.count_fact(o), f"{k} * {o.count} = {k * o.count}.")
    return Chain("math_ks", question, (*steps, _answer_sentence(k * o.count)))


def _math_ss(r: random.Random, namer) -> Chain:
    p = math_ss.Problem(
        namer.person().split()[0], r.choice(math_ss.CONTAINERS), r.choice(math_ss.TARGET_ITEMS),
        r.randint(2, 9), r.randint(2, 9), r.randint(1, 20),
    )  # fmt: skip
    question, _, reasoning = math_ss.two_step(p, r.randrange(len(math_ss.TWO_STEP_QUESTIONS)))
    return Chain("math_ss", question, tuple(sentences(reasoning)))


MAKERS: dict[str, Callable[[random.Random, object], Chain]] = {
    "twohop": _twohop,
    "math_ks": _math_ks,
    "math_ss": _math_ss,
}


def background_chains(purpose: str, n_per_family: int, seed: int = 0) -> list[Chain]:
    """Faithful chains of fresh background names (new names for every chain), ``n_per_family`` of
    each family, interleaved; a pure function of its arguments."""
    namer = fresh_namer(background_world(), f"rescorer-{purpose}-{seed}")
    r = random.Random(f"rescorer-{purpose}-{seed}")
    out = []
    for _ in range(n_per_family):
        for make in MAKERS.values():
            namer.forget()
            out.append(make(r, namer))
    return out


def perturb(chain: Chain, other: Chain, position: int) -> Chain | None:
    """``chain`` with its sentence ``position`` taken from ``other`` (same family), or None when that
    sentence is the same text."""
    if other.family != chain.family or other.sentences[position] == chain.sentences[position]:
        return None
    sentences = list(chain.sentences)
    sentences[position] = other.sentences[position]
    kind = (
        PERTURBATIONS[0] if position == 0 else PERTURBATIONS[2] if position == len(sentences) - 1 else PERTURBATIONS[1]
    )
    return replace(chain, sentences=tuple(sentences), faithful=False, perturbation=kind)


def labelled(chains: list[Chain], seed: int = 0) -> list[Chain]:
    """Every chain once faithful and once with one sentence perturbed (position drawn uniformly):
    a balanced set."""
    r = random.Random(f"labelled-{seed}")
    by_family: dict[str, list[Chain]] = {}
    for c in chains:
        by_family.setdefault(c.family, []).append(c)
    out = []
    for c in chains:
        out.append(c)
        pool = by_family[c.family]
        position = r.randrange(len(c.sentences))
        for _ in range(100):
            bad = perturb(c, r.choice(pool), position)
            if bad is not None:
                out.append(bad)
                break
    return out


def gold_test_chains(n_per_family: int = 100, seed: int = 0) -> list[Chain]:
    """The gold CoT chains of the test splits of two-hop F, math_ks F and math_ss (seed ``seed``):
    entities the rescorer never saw, from the test name space."""
    from lorareuse_plugin.data.build import build_dataset, make_spec

    out = []
    for family, familiarity in (("twohop", "F"), ("math_ks", "F"), ("math_ss", None)):
        docs = build_dataset(make_spec(family, familiarity, seed, n_per_family, None, None, None)).splits["test"]
        out += [Chain(family, d["question"], tuple(sentences(d["cot"]))) for d in docs[:n_per_family]]
    return out


def iter_pairs(chain: Chain) -> Iterator[tuple[str, str]]:
    """(what came before, the next sentence) for every sentence: the question first."""
    for i, s in enumerate(chain.sentences):
        yield " ".join((chain.question, *chain.sentences[:i])), s
