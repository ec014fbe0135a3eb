"""The registry of dataset families: one entry per family, each built by its own module."""

from __future__ import annotations

from lorareuse_plugin.data import math_ks, math_ss, twohop
from lorareuse_plugin.data.family import Family
from lorareuse_plugin.data.spec import Sizes
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world.familiarity import Familiarity

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "twohop",
            "person -> birth country -> capital; the test asks person -> capital",
            (Familiarity.F, Familiarity.H, Familiarity.R),
            ("hop1", "hop2"),
            twohop.build,
            contaminated=("ac",),
        ),
        Family(
            "math_ks",
            "knowledge x skill: object part counts x multiplication word problems",
            (Familiarity.F, Familiarity.R),
            ("knowledge", "skill"),
            math_ks.build,
            contaminated=("ac",),
        ),
        Family(
            "math_ss",
            "skill x skill: one-step addition x one-step multiplication, tested in two steps",
            (),
            ("add", "mul"),
            math_ss.build,
        ),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[str(name).strip().lower()]
    except KeyError:
        raise ConfigError(f"unknown family {name!r}: use one of {', '.join(FAMILIES)}") from None


def parse_familiarity(family: Family, value: object) -> Familiarity | None:
    """The family's familiarity, or None for families without that axis (then it must be omitted)."""
    if not family.familiarities:
        if value not in (None, "", "none", "None"):
            raise ConfigError(f"family {family.name} has no familiarity axis: omit the familiarity (got {value!r})")
        return None
    if value in (None, ""):
        choices = ", ".join(f.value for f in family.familiarities)
        raise ConfigError(f"family {family.name} needs a familiarity: use one of {choices}")
    return Familiarity.parse(value, family.familiarities)  # type: ignore[arg-type]


# Defaults where a world's real tables cannot supply the global ones (32 real objects, three
# composed questions each, for math_ks R).
_DEFAULT_SIZES = {("math_ks", "R"): Sizes(n_test=60, n_target=30)}


def default_sizes(family: str, familiarity: str | None) -> Sizes:
    return _DEFAULT_SIZES.get((family, familiarity), Sizes())
