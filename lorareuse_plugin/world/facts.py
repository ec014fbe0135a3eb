"""The curated real-fact tables shipped as package data (facts are fine to ship).

"Real" means: true in the world, in any real LLM's pretraining, and — by construction — in the
embedded base model's pretraining corpus.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Country:
    name: str
    capital: str


@dataclass(frozen=True)
class Person:
    name: str
    birth_country: str


@dataclass(frozen=True)
class CountedObject:
    """An object or animal with a fixed count of some part, e.g. a spider has 8 legs."""

    singular: str
    plural: str
    part: str
    count: int


@dataclass(frozen=True)
class RealFacts:
    countries: tuple[Country, ...]
    people: tuple[Person, ...]
    objects: tuple[CountedObject, ...]

    @functools.cached_property
    def capital_of(self) -> dict[str, str]:
        return {c.name: c.capital for c in self.countries}

    @functools.cached_property
    def vocabulary(self) -> frozenset[str]:
        """Every lowercase word of every real name: fictional names must avoid all of them."""
        names: list[str] = []
        for c in self.countries:
            names += [c.name, c.capital]
        names += [p.name for p in self.people]
        for o in self.objects:
            names += [o.singular, o.plural, o.part]
        return frozenset(w for n in names for w in re.findall(r"[a-z]+", n.lower()))


def _table(name: str) -> dict:
    text = resources.files("lorareuse_plugin.world").joinpath("tables", name).read_text("utf-8")
    return json.loads(text)


@functools.cache
def real_facts() -> RealFacts:
    countries = tuple(Country(r["country"], r["capital"]) for r in _table("countries.json")["countries"])
    people = tuple(Person(r["person"], r["country"]) for r in _table("people.json")["people"])
    objects = tuple(
        CountedObject(r["singular"], r["plural"], r["property"], int(r["count"]))
        for r in _table("objects.json")["objects"]
    )
    known = {c.name for c in countries}
    missing = sorted({p.birth_country for p in people} - known)
    if missing:  # a packaging error, not user input
        raise RuntimeError(f"people.json names countries missing from countries.json: {missing}")
    return RealFacts(countries, people, objects)
