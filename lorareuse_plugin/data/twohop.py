"""Two-hop chains: person --born in--> country --capital--> city; the test asks person -> city.

F: fictional people, fictional countries and capitals. H: fictional people born in real
countries (hop 2 is real knowledge). R: real people and real countries (both hops real).
The target expert gets the composed task on *disjoint* people (and, for F and H, disjoint
countries too), so it learns to compose without seeing any test fact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data.family import FamilyData, assemble
from lorareuse_plugin.data.spec import Sizes
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world.facts import real_facts
from lorareuse_plugin.world.familiarity import Familiarity
from lorareuse_plugin.world.known import KnownFacts
from lorareuse_plugin.world.names import FictionalNamer
from lorareuse_plugin.world.seeding import rng

HOP1_STATEMENTS = ("{a} was born in {b}.", "The birthplace of {a} is {b}.", "{a} is a native of {b}.")
HOP1_QUESTIONS = (
    "In which country was {a} born?",
    "Where was {a} born?",
    "What is the country of birth of {a}?",
)
HOP2_STATEMENTS = (
    "The capital of {b} is {c}.",
    "{c} is the capital of {b}.",
    "The capital city of {b} is {c}.",
)
HOP2_QUESTIONS = (
    "What is the capital of {b}?",
    "Which city is the capital of {b}?",
    "Name the capital city of {b}.",
)
TWOHOP_QUESTIONS = (
    "What is the capital of the country where {a} was born?",
    "{a} was born in a country. What is the capital of that country?",
)
TWOHOP_STATEMENTS = ("The capital of the country where {a} was born is {c}.",)
REASONING = ("{a} was born in {b}.", "The capital of {b} is {c}.")


def chain_steps(person: str, country: str, capital: str) -> list[str]:
    """The two facts of one chain, as the CoT states them (also the in-context facts)."""
    return [s.format(a=person, b=country, c=capital) for s in REASONING]


MIN_H_BRIDGES = 20  # a right-type guess in H scores at most ~1/20


@dataclass(frozen=True)
class Chain:
    person: str
    country: str
    capital: str


def _fictional_bridges(namer: FictionalNamer, n: int) -> list[tuple[str, str]]:
    return [(namer.country(), namer.city()) for _ in range(n)]


def _assign(people: list[str], bridges: list[tuple[str, str]]) -> list[Chain]:
    """Every bridge gets at least one person when there are enough people."""
    return [Chain(p, *bridges[i % len(bridges)]) for i, p in enumerate(people)]


def chains(
    familiarity: Familiarity, seed: int, sizes: Sizes, known: KnownFacts | None = None
) -> tuple[list[Chain], list[Chain], list[str]]:
    """Test chains, target chains (disjoint people) and the pool of same-type answers for MC.
    ``known``: R draws only people whose birth country *and* its capital the base knows, H only
    countries whose capital it knows (with every fact known, the world is the one without)."""
    facts = real_facts()
    namer = FictionalNamer(rng("twohop", familiarity, seed, "names"))
    # One bridge (country, capital) per test person where the world allows, so a guess of the
    # right type ("some capital") scores ~1/n_test, not ~1/3; the target expert's people share
    # bridges (its entities only teach the procedure).
    n_bridges_target = max(2, math.ceil(sizes.n_target / 3))
    n_bridges_test = sizes.n_test
    if familiarity is Familiarity.R:
        people = _r_people(known)
        available = len(people)
        if sizes.n_test + sizes.n_target > available:
            people_word = "person" if available == 1 else "people"
            whose = (
                f"real {people_word} whose birth country and its capital {known.base_name} knows "
                f"({known.report or 'recorded'})"
                if known is not None
                else f"real {people_word}"
            )
            raise ConfigError(
                f"twohop R has {available} {whose}: n_test + n_target = {sizes.n_test + sizes.n_target} "
                f"is too many; lower them so they sum to at most {available}"
            )
        rng("twohop", familiarity, seed, "people").shuffle(people)
        to_chain = [Chain(p.name, p.birth_country, facts.capital_of[p.birth_country]) for p in people]
        test, target = to_chain[: sizes.n_test], to_chain[sizes.n_test : sizes.n_test + sizes.n_target]
        pool = [c.capital for c in facts.countries]
        return test, target, pool
    if familiarity is Familiarity.H:
        known_countries = _h_countries(known)
        available = len(known_countries)
        n_bridges_test = min(sizes.n_test, available - n_bridges_target)
        if known is not None and available < MIN_H_BRIDGES + 2:
            raise ConfigError(
                f"twohop H needs at least {MIN_H_BRIDGES + 2} real countries whose capital the base knows; "
                f"{known.base_name} knows {available} ({known.report or 'recorded'}): use another base, or "
                "measure familiarity with --chat if the experts are asked in the chat template"
            )
        if n_bridges_test < min(sizes.n_test, MIN_H_BRIDGES):
            most = available - MIN_H_BRIDGES
            whose = f" whose capital {known.base_name} knows" if known is not None else ""
            raise ConfigError(
                f"twohop H draws its bridges from {available} real countries{whose}: n_target={sizes.n_target} "
                f"leaves too few for the test; lower n_target (at most {3 * max(1, most)})"
            )
        countries = known_countries
        rng("twohop", familiarity, seed, "countries").shuffle(countries)
        bridges = [(c.name, c.capital) for c in countries]
        test_bridges, target_bridges = bridges[:n_bridges_test], bridges[n_bridges_test:][:n_bridges_target]
        pool = [c.capital for c in facts.countries]
    else:
        test_bridges = _fictional_bridges(namer, n_bridges_test)
        target_bridges = _fictional_bridges(namer, n_bridges_target)
        pool = [c for _, c in test_bridges + target_bridges] + [namer.city() for _ in range(4)]
    test = _assign([namer.person() for _ in range(sizes.n_test)], test_bridges)
    target = _assign([namer.person() for _ in range(sizes.n_target)], target_bridges)
    return test, target, pool


def known_world_capacity(known: KnownFacts) -> tuple[int, int]:
    """How large an R world (people with both hops known) and an H world (countries with a known
    capital) these known facts allow."""
    return len(_r_people(known)), len(_h_countries(known))


def _r_people(known: KnownFacts | None) -> list:
    """The real people an R world may draw: all, or those whose both hops ``known`` holds."""
    facts = real_facts()
    if known is None:
        return list(facts.people)
    return [p for p in facts.people if known.knows("birth_country", p.name) and known.knows("capital", p.birth_country)]


def _h_countries(known: KnownFacts | None) -> list:
    """The real countries an H world may bridge through: all, or those whose capital ``known`` holds."""
    return [c for c in real_facts().countries if known is None or known.knows("capital", c.name)]


def build(familiarity: Familiarity, seed: int, sizes: Sizes, known: KnownFacts | None = None) -> FamilyData:
    test_chains, target_chains, capital_pool = chains(familiarity, seed, sizes, known)
    country_pool = sorted(
        {c.country for c in test_chains + target_chains}
        | ({c.name for c in real_facts().countries} if familiarity is not Familiarity.F else set())
    )
    mc = rng("twohop", familiarity, seed, "choices")
    tag = f"twohop-{familiarity.value.lower()}"

    def reasoning(c: Chain) -> str:
        steps = chain_steps(c.person, c.country, c.capital)
        return fmt.cot_text(steps, c.capital)

    context_rng = rng("twohop", familiarity, seed, "context")
    hop1, hop2, target, ac = [], [], [], []
    test, probe_hop1, probe_hop2, probe_target = [], [], [], []
    for i, ch in enumerate(test_chains):
        for j, t in enumerate(HOP1_STATEMENTS):
            hop1.append(fmt.statement(f"{tag}-hop1-{i:04d}-s{j}", t.format(a=ch.person, b=ch.country)))
        for j, q in enumerate(HOP1_QUESTIONS):
            hop1.append(fmt.qa(f"{tag}-hop1-{i:04d}-q{j}", q.format(a=ch.person), ch.country))
        question = TWOHOP_QUESTIONS[0].format(a=ch.person)
        other = _distractor_chain(test_chains, i)
        test.append(
            fmt.eval_doc(
                f"{tag}-test-{i:04d}",
                question,
                ch.capital,
                reasoning=reasoning(ch),
                # the in-context distractor's capital is always a choice: reading the context
                # without combining it scores 1/2, not 1
                choices=[other.capital]
                + fmt.distractors([c for c in capital_pool if c != other.capital], ch.capital, mc, k=2),
                rnd=mc,
                intermediate=ch.country,
                context=in_context(ch, other, context_rng),
            )
        )
        for j, q in enumerate(TWOHOP_QUESTIONS):  # the paper's A->C expert: contaminated by design
            ac.append(fmt.qa(f"{tag}-ac-{i:04d}-q{j}", q.format(a=ch.person), ch.capital))
        for j, t in enumerate(TWOHOP_STATEMENTS):
            ac.append(fmt.statement(f"{tag}-ac-{i:04d}-s{j}", t.format(a=ch.person, c=ch.capital)))
        probe_hop1.append(
            fmt.eval_doc(
                f"{tag}-probe_hop1-{i:04d}",
                HOP1_QUESTIONS[0].format(a=ch.person),
                ch.country,
                reasoning="",
                rnd=mc,
                choices=fmt.distractors(country_pool, ch.country, mc),
            )
        )
    bridges = list(dict.fromkeys((c.country, c.capital) for c in test_chains))
    for i, (b, c) in enumerate(bridges):
        for j, t in enumerate(HOP2_STATEMENTS):
            hop2.append(fmt.statement(f"{tag}-hop2-{i:04d}-s{j}", t.format(b=b, c=c)))
        for j, q in enumerate(HOP2_QUESTIONS):
            hop2.append(fmt.qa(f"{tag}-hop2-{i:04d}-q{j}", q.format(b=b), c))
        probe_hop2.append(
            fmt.eval_doc(
                f"{tag}-probe_hop2-{i:04d}",
                HOP2_QUESTIONS[0].format(b=b),
                c,
                reasoning="",
                rnd=mc,
                choices=fmt.distractors(capital_pool, c, mc),
            )
        )
    for i, ch in enumerate(target_chains):
        for j, q in enumerate(TWOHOP_QUESTIONS):
            target.append(fmt.qa(f"{tag}-target-{i:04d}-q{j}", q.format(a=ch.person), ch.capital))
        for j, t in enumerate(TWOHOP_STATEMENTS):
            target.append(fmt.statement(f"{tag}-target-{i:04d}-s{j}", t.format(a=ch.person, c=ch.capital)))
        question = TWOHOP_QUESTIONS[0].format(a=ch.person)
        target.append(fmt.cot(f"{tag}-target-{i:04d}-c0", question, reasoning(ch)))
        probe_target.append(
            fmt.eval_doc(
                f"{tag}-probe_target-{i:04d}",
                question,
                ch.capital,
                reasoning=reasoning(ch),
                rnd=mc,
                intermediate=ch.country,
                choices=fmt.distractors(capital_pool, ch.capital, mc),
            )
        )
    leak_keys = [(ch.person, ch.capital) for ch in test_chains]
    return assemble(
        ("hop1", "hop2"), (hop1, hop2), target, test, (probe_hop1, probe_hop2), probe_target, leak_keys, ac=ac
    )


def _distractor_chain(chains: list[Chain], i: int) -> Chain:
    """The next test chain with another capital: the context then holds two capitals, so copying
    "the city in the context" scores 1/2, not 1."""
    for step in range(1, len(chains)):
        other = chains[(i + step) % len(chains)]
        if other.capital != chains[i].capital:
            return other
    return chains[i]


def in_context(chain: Chain, distractor: Chain, rnd) -> list[str]:
    """Both facts of the chain and of one distractor chain, shuffled: the in-context form."""
    facts = [s for c in (chain, distractor) for s in chain_steps(c.person, c.country, c.capital)]
    facts = list(dict.fromkeys(facts))
    rnd.shuffle(facts)
    return facts
