"""The baseline ladder: what a reuse method must be compared with to mean anything.

base → each expert alone → {m1, m2} averaged and routed (the "2-combination library") →
{m1, m2, target} likewise (ours: no test fact) → {m1, m2, ac} likewise (the paper's library: ``ac``
is trained on the test's composed facts, contaminated by design and flagged in every table) →
union (one LoRA on both members' data) → oracle expert (all data) and oracle routing. The 2-expert
library also gets the simple data-free baselines a practitioner tries first (``BASELINES``: the
sum, a random router, output mixing, explicit chaining, rescoring). Only experts
present in the library are used. Foreign adapters (no world, no members) get the plain ladder:
base → each adapter → every method over all of them → oracle routing where ``routes`` are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AVERAGING = ("delta_mean", "factor_mean", "svd", "ties", "dare")
ROUTING = ("arrow", "seq_arrow")
BASELINES = ("task_arithmetic", "random_route", "ensemble", "chain", "rescore")
TWO_EXPERTS_ONLY = ("chain",)  # asks the first member, then the second
QUICK_METHODS = ("delta_mean", "factor_mean", "arrow", "seq_arrow")
CONTAMINATED = ("ac",)  # experts trained on test facts by design: flagged wherever they appear


def is_contaminated(experts: tuple[str, ...] | str) -> bool:
    names = experts.split("+") if isinstance(experts, str) else experts
    return any(e in CONTAMINATED for e in names)


@dataclass(frozen=True)
class LadderEntry:
    label: str
    group: str  # baseline | expert | library-2 | library-3 | upper
    method: str
    experts: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.label.replace("[", "_").replace("]", "").replace("+", "-").replace(":", "_").replace(" ", "")


def ladder(
    manifest: dict,
    methods: tuple[str, ...] | None = None,
    *,
    routes: str | None = None,
    oracle: bool = True,
    three_methods: tuple[str, ...] | None = None,
) -> list[LadderEntry]:
    """Our ladder. ``oracle=False`` leaves out oracle routing (tasks not ours, no ``routes``);
    ``three_methods`` narrows the 3-expert libraries' rows (the demo's time budget)."""
    members = tuple(manifest["data"]["members"])
    have = set(manifest["experts"])
    from lorareuse_plugin.data.decompose import DECOMPOSERS

    decomposable = manifest["data"].get("family") in DECOMPOSERS
    two = methods or (AVERAGING + ROUTING + BASELINES)  # the 2-expert library's rows
    methods = methods or (AVERAGING + ROUTING)
    entries = [LadderEntry("base", "baseline", "base")]
    for e in (*members, "target", *CONTAMINATED):
        if e in have:
            entries.append(LadderEntry(f"expert:{e}", "expert", f"single:{e}", (e,)))
    libraries = [("library-2", members), ("library-3", (*members, "target"))]
    libraries += [("library-3ac", (*members, e)) for e in CONTAMINATED]
    for group, experts in libraries:
        if not set(experts) <= have:
            continue
        for m in two if group == "library-2" else three_methods or methods:
            if m in TWO_EXPERTS_ONLY and (len(experts) != 2 or not decomposable):
                continue
            entries.append(LadderEntry(f"{m}[{'+'.join(experts)}]", group, m, experts))
    for e in ("union", "oracle"):
        if e in have:
            entries.append(LadderEntry(f"expert:{e}", "upper", f"single:{e}", (e,)))
    if oracle and set((*members, "target")) <= have:
        experts = (*members, "target")
        entries.append(oracle_entry(experts, routes))
    return entries


def foreign_ladder(
    experts: tuple[str, ...], methods: tuple[str, ...] | None = None, routes: str | None = None
) -> list[LadderEntry]:
    """Adapters that are not ours: base, each adapter alone, every method over all of them (group
    ``library``), and oracle routing only where ``routes`` says which adapter serves which task."""
    entries = [LadderEntry("base", "baseline", "base")]
    entries += [LadderEntry(f"expert:{e}", "expert", f"single:{e}", (e,)) for e in experts]
    entries += [LadderEntry(f"{m}[{'+'.join(experts)}]", "library", m, experts) for m in methods or AVERAGING + ROUTING]
    if routes:
        entries.append(oracle_entry(experts, routes))
    return entries


def oracle_entry(experts: tuple[str, ...], routes: str | None) -> LadderEntry:
    return LadderEntry(
        "oracle-routing[" + "+".join(experts) + "]", "upper", "oracle", experts, {"routes": routes} if routes else {}
    )
