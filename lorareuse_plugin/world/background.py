"""The background population of the embedded base's pretraining corpus.

A base that has never composed two facts cannot show whether *reused adapters* compose, so
the corpus teaches the procedures (state a fact, answer a question, read facts in context,
chain two facts step by step, copy a name) over a large population of background entities.
Their names come from the ``BACKGROUND`` name space, which shares no word with any test world
of any seed (``world.names``), so the base learns procedures here and no test fact.

A fixed share of the background people is *held out*: their facts are in the corpus but their
chain never is. The base doing the chain for them is the go/no-go that it learned a procedure,
not a list of memorised chains.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lorareuse_plugin.world.facts import CountedObject, Country, Person, real_facts
from lorareuse_plugin.world.names import BACKGROUND, CREATURE_PARTS, FictionalNamer
from lorareuse_plugin.world.seeding import rng

BACKGROUND_VERSION = 1


@dataclass(frozen=True)
class BackgroundSizes:
    people: int = 1500
    countries: int = 300
    creatures: int = 120
    held_out_every: int = 8  # person i is held out when i % held_out_every == 0
    real_country_share: float = 0.25  # share of background people born in a real country


@dataclass(frozen=True)
class BackgroundWorld:
    countries: tuple[Country, ...]  # fictional
    people: tuple[Person, ...]  # fictional; born in a fictional or a real country
    creatures: tuple[CountedObject, ...]  # fictional, with a part count
    held_out: frozenset[str]  # people whose chain the corpus never shows

    @functools.cached_property
    def capital_of(self) -> dict[str, str]:
        return {c.name: c.capital for c in self.countries} | real_facts().capital_of

    @property
    def chained_people(self) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.name not in self.held_out)

    @property
    def held_out_people(self) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.name in self.held_out)

    @functools.cached_property
    def words(self) -> frozenset[str]:
        """Every lowercase word of every background name (tests prove test worlds avoid them)."""
        import re

        names = [c.name for c in self.countries] + [c.capital for c in self.countries]
        names += [p.name for p in self.people] + [o.singular for o in self.creatures]
        return frozenset(w for n in names for w in re.findall(r"[a-z]+", n.lower()))


@functools.cache
def background_world(sizes: BackgroundSizes = BackgroundSizes()) -> BackgroundWorld:
    """A pure function of ``sizes`` (and ``BACKGROUND_VERSION``)."""
    namer = FictionalNamer(rng("background", BACKGROUND_VERSION, "names"), space=BACKGROUND, shared_surnames=True)
    countries = tuple(Country(namer.country(), namer.city()) for _ in range(sizes.countries))
    real = real_facts().countries
    pick = rng("background", BACKGROUND_VERSION, "birth")
    people = []
    for i in range(sizes.people):
        home = (
            pick.choice(real).name if pick.random() < sizes.real_country_share else countries[i % len(countries)].name
        )
        people.append(Person(namer.person(), home))
    counts = rng("background", BACKGROUND_VERSION, "counts")
    creatures = []
    for _ in range(sizes.creatures):
        name = namer.creature()
        creatures.append(CountedObject(name, name + "s", counts.choice(CREATURE_PARTS), counts.randint(2, 9)))
    held_out = frozenset(p.name for i, p in enumerate(people) if i % sizes.held_out_every == 0)
    return BackgroundWorld(countries, tuple(people), tuple(creatures), held_out)


def fresh_namer(world: BackgroundWorld, purpose: str) -> FictionalNamer:
    """Names for in-context and copy documents: background name space (so never a test-world
    word), never a word of a background entity whose facts the corpus states, and new in every
    document (``forget()`` between documents) — the base cannot answer about them from memory,
    so it learns to read and copy from the prompt."""
    return FictionalNamer(rng("background", BACKGROUND_VERSION, "fresh", purpose), avoid=world.words, space=BACKGROUND)
