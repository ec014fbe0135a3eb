"""The shape every dataset family shares: two library members, a target expert on the composed
task over disjoint entities, the union and oracle data, a composed test set and probes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lorareuse_plugin.world.familiarity import Familiarity

Record = dict


@dataclass(frozen=True)
class FamilyData:
    """All splits of one (family, familiarity, seed, sizes). ``leak_keys`` are tuples of strings
    that, all appearing in one training text, would reveal a test answer (e.g. person + capital)."""

    splits: dict[str, list[Record]]
    leak_keys: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    familiarities: tuple[Familiarity, ...]  # empty: the family has no familiarity axis
    members: tuple[str, str]  # the two library experts, e.g. ("hop1", "hop2")
    build: Callable[..., FamilyData]  # (familiarity, seed, sizes) -> FamilyData
    # splits that hold test facts by design (the paper's A->C expert): exempt from the leakage
    # check by name, and flagged wherever an expert trained on them is reported
    contaminated: tuple[str, ...] = ()

    @property
    def train_splits(self) -> tuple[str, ...]:
        return (*self.members, "target", "union", "oracle", *self.contaminated)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("test", *(f"probe_{m}" for m in self.members), "probe_target")

    @property
    def all_splits(self) -> tuple[str, ...]:
        return self.eval_splits + self.train_splits


def assemble(
    members: tuple[str, str],
    member_data: tuple[list[Record], list[Record]],
    target: list[Record],
    test: list[Record],
    probes: tuple[list[Record], list[Record]],
    probe_target: list[Record],
    leak_keys: list[tuple[str, ...]],
    ac: list[Record] | None = None,
) -> FamilyData:
    """Name the splits; ``union`` = both members' data, ``oracle`` = union + target data;
    ``ac`` = the composed facts of the test entities (contaminated by design)."""
    union = member_data[0] + member_data[1]
    splits = {
        "test": test,
        f"probe_{members[0]}": probes[0],
        f"probe_{members[1]}": probes[1],
        "probe_target": probe_target,
        members[0]: member_data[0],
        members[1]: member_data[1],
        "target": target,
        "union": union,
        "oracle": union + target,
    }
    if ac is not None:
        splits["ac"] = ac
    return FamilyData(splits=splits, leak_keys=tuple(leak_keys))
