"""Build every split of a dataset: a pure function of (family, familiarity, seed, sizes[, known facts])."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from lorareuse_plugin.data.families import default_sizes, get_family, parse_familiarity
from lorareuse_plugin.data.family import Family, FamilyData, Record
from lorareuse_plugin.data.leakage import check_leakage
from lorareuse_plugin.data.spec import Sizes, SplitSpec, parse_int
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world.known import parse_known

# Bump when any generator's output changes for the same arguments; recorded in every export.
GENERATOR_VERSION = 2


def jsonl_bytes(records: list[Record]) -> bytes:
    """The canonical serialisation: hashes are over exactly the bytes an export writes."""
    return b"".join(
        json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        for r in records
    )


def split_hash(records: list[Record]) -> str:
    return hashlib.sha256(jsonl_bytes(records)).hexdigest()


@dataclass(frozen=True)
class Dataset:
    spec: SplitSpec
    family: Family
    data: FamilyData

    @property
    def splits(self) -> Mapping[str, list[Record]]:
        return self.data.splits

    @functools.cached_property
    def hashes(self) -> dict[str, str]:
        return {name: split_hash(self.splits[name]) for name in self.family.all_splits}


def make_spec(
    family: str,
    familiarity: object = None,
    seed: object = 0,
    n_test: object = None,
    n_target: object = None,
    n_skill: object = None,
    known: object = None,
) -> SplitSpec:
    """Validate user-facing values (strings from a CLI or YAML are fine) into a ``SplitSpec``.
    ``known``: a familiarity report path (or a recorded set) choosing R/H facts a base knows."""
    fam = get_family(family)
    familiarity_value = parse_familiarity(fam, familiarity)
    defaults = default_sizes(fam.name, familiarity_value.value if familiarity_value else None)
    sizes = Sizes(
        n_test=defaults.n_test if n_test is None else parse_int("n_test", n_test, 1),
        n_target=defaults.n_target if n_target is None else parse_int("n_target", n_target, 1),
        n_skill=defaults.n_skill if n_skill is None else parse_int("n_skill", n_skill, 1),
    )
    known_facts = parse_known(known)
    chooses = fam.name == "twohop" and familiarity_value is not None and familiarity_value.value in ("R", "H")
    if known_facts is not None and not chooses:
        what = f"{fam.name} {familiarity_value.value}" if familiarity_value else fam.name
        raise ConfigError(
            f"known facts choose the real facts of a twohop R or H world; {what} has none to choose: "
            "leave out known (or use --familiarity R / H)"
        )
    return SplitSpec(fam.name, familiarity_value, parse_int("seed", seed, 0), sizes, known_facts)


@functools.lru_cache(maxsize=32)
def build_dataset(spec: SplitSpec) -> Dataset:
    """Generate all splits and prove there is no leakage before anyone can use them."""
    family = get_family(spec.family)
    extra = {"known": spec.known} if spec.known is not None else {}
    data = family.build(spec.familiarity, spec.seed, spec.sizes, **extra)
    check_leakage(family, data)
    return Dataset(spec, family, data)
