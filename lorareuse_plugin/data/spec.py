"""What identifies a generated dataset: family, familiarity, seed and sizes — and, for a world built
on a real base, the facts that base knows (``world.known``)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world.familiarity import Familiarity
from lorareuse_plugin.world.known import KnownFacts


@dataclass(frozen=True)
class Sizes:
    """How much data to generate. ``n_skill`` only matters for the math families' skill experts."""

    n_test: int = 100
    n_target: int = 60
    n_skill: int = 300

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"size {f.name}={value!r} is invalid: sizes must be positive integers (e.g. {f.name}=30)"
                )


@dataclass(frozen=True)
class SplitSpec:
    family: str
    familiarity: Familiarity | None
    seed: int
    sizes: Sizes
    known: KnownFacts | None = None  # R/H facts drawn only from what a base knows

    def to_json(self) -> dict:
        """family, familiarity, seed, sizes (and the known facts, when used): what exports and library
        manifests record. Without known facts the record is what it always was."""
        out = {
            "family": self.family,
            "familiarity": self.familiarity.value if self.familiarity else None,
            "seed": self.seed,
            "sizes": dataclasses.asdict(self.sizes),
        }
        if self.known is not None:
            out["known"] = self.known.to_json()
        return out

    @property
    def slug(self) -> str:
        fam = f"_{self.familiarity.value.lower()}" if self.familiarity else ""
        return f"{self.family}{fam}"


def parse_int(name: str, value: object, minimum: int) -> int:
    """An integer from an int, an integral float or a decimal string; one-line error otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        raise ConfigError(f"{name}={value!r} is not an integer: pass e.g. {name}={max(minimum, 1) * 30}")
    if number < minimum:
        raise ConfigError(f"{name}={number} is invalid: it must be an integer >= {minimum}")
    return number
