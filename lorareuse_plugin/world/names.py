"""Pronounceable fictional names, collision-free and never a word of any real name we ship.

A ``FictionalNamer`` owns one RNG and one set of used words, so every name it hands out —
person, country, city or creature — is distinct from every other in the same world.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re

from lorareuse_plugin.world.facts import real_facts

_ONSETS = (
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "gr",
    "kr",
    "tr",
    "st",
    "th",
    "pl",
    "fl",
    "gl",
)
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o")
_CODAS = ("", "", "", "n", "r", "l", "m", "th", "k")
_FIRST_ENDINGS = ("", "a", "o", "in", "en", "is")
_LAST_ENDINGS = ("ik", "ov", "ane", "ell", "ard", "ing", "ow")
_COUNTRY_ENDINGS = ("ia", "ora", "and", "esh", "avia", "ovia", "eth")
_CITY_ENDINGS = ("ton", "mar", "vel", "dor", "ith", "ump", "orn")
_CREATURE_ONSETS = (
    "gl",
    "fl",
    "bl",
    "sn",
    "sk",
    "zw",
    "kr",
    "pl",
    "tr",
    "dr",
    "br",
    "gr",
    "fr",
    "sp",
    "sl",
    "z",
    "v",
    "j",
    "qu",
)
_CREATURE_VOWELS = ("a", "e", "i", "o", "u", "oo", "ee")
_CREATURE_CODAS = ("rp", "mp", "nk", "b", "g", "rk", "lb", "nd", "ft", "p", "t", "d", "m", "rn")
# A second, alien syllable keeps creature names off the English dictionary ("plum" -> "plumog").
_CREATURE_ENDINGS = ("ib", "ub", "og", "ek", "ap", "om", "urt", "ig")
CREATURE_PARTS = ("legs", "arms", "eyes", "horns", "wings", "tails", "fins", "spikes")

# Words our templates use: a name equal to one of them would make a prompt ambiguous.
_TEMPLATE_WORDS = frozenset(
    "a an the of in is was born where what which who country capital city birth birthplace how many "
    "does do have has total each every answer so step think let us number on and with more now".split()
)

_MAX_TRIES = 10_000

# Every fictional word belongs to exactly one of two disjoint name spaces, decided by its own
# hash: test worlds (every family, familiarity and seed) draw from TEST, the base model's
# pretraining background population from BACKGROUND. So no background entity can ever share a
# word with any test world, whatever the seed, while both keep the same syllable statistics
# (the base learns to copy and compose names that look like the test names).
TEST, BACKGROUND = "test", "background"
NAME_SPACES = (TEST, BACKGROUND)


@functools.lru_cache(maxsize=1 << 16)
def name_space(word: str) -> str:
    """The name space a fictional word belongs to (a quarter of all words are background)."""
    digest = hashlib.sha256(word.lower().encode("utf-8")).digest()
    return BACKGROUND if digest[0] % 4 == 0 else TEST


class FictionalNamer:
    """Draws names from one seeded RNG; refuses duplicates and real-name words."""

    def __init__(
        self,
        rnd: random.Random,
        avoid: frozenset[str] = frozenset(),
        space: str = TEST,
        shared_surnames: bool = False,
    ) -> None:
        """``shared_surnames``: people may share a last name (full names stay distinct) — the
        background population is larger than the one-word-one-entity space allows."""
        if space not in NAME_SPACES:
            raise ValueError(f"unknown name space {space!r}")
        self._rnd = rnd
        self._space = space
        self._banned = real_facts().vocabulary | _TEMPLATE_WORDS | {w.lower() for w in avoid}
        self._used: set[str] = set()
        self._surnames: set[str] | None = set() if shared_surnames else None

    def forget(self) -> None:
        """Forget the names handed out so far (banned words stay banned): for documents that each
        need a few fresh, mutually distinct names, but may repeat another document's."""
        self._used.clear()
        if self._surnames is not None:
            self._surnames.clear()

    def _syllable(self) -> str:
        r = self._rnd
        return r.choice(_ONSETS) + r.choice(_VOWELS) + r.choice(_CODAS)

    def _claim(self, make, surname: bool = False) -> str:
        shared = self._surnames if surname else None
        for _ in range(_MAX_TRIES):
            name = make()
            words = re.findall(r"[a-z]+", name.lower())
            if name.lower() in self._used or any(len(w) < 3 or name_space(w) != self._space for w in words):
                continue
            unique, reusable = (words[:-1], words[-1:]) if shared is not None else (words, [])
            if any(w in self._banned or w in self._used for w in unique):
                continue
            if any(w in self._banned or (w in self._used and w not in shared) for w in reusable):  # type: ignore[operator]
                continue
            self._used.update(words)
            self._used.add(name.lower())
            if shared is not None:
                shared.update(reusable)
            return name
        raise RuntimeError("fictional name space exhausted; ask for fewer entities")

    def person(self) -> str:
        r = self._rnd
        return self._claim(
            lambda: (
                (self._syllable() + self._syllable() + r.choice(_FIRST_ENDINGS)).capitalize()
                + " "
                + (self._syllable() + r.choice(_LAST_ENDINGS)).capitalize()
            ),
            surname=True,
        )

    def country(self) -> str:
        return self._claim(
            lambda: (self._syllable() + self._syllable() + self._rnd.choice(_COUNTRY_ENDINGS)).capitalize()
        )

    def city(self) -> str:
        return self._claim(lambda: (self._syllable() + self._rnd.choice(_CITY_ENDINGS)).capitalize())

    def creature(self) -> str:
        r = self._rnd
        return self._claim(
            lambda: (
                r.choice(_CREATURE_ONSETS)
                + r.choice(_CREATURE_VOWELS)
                + r.choice(_CREATURE_CODAS)
                + r.choice(_CREATURE_ENDINGS)
            )
        )
