"""Paired comparisons on the same test items (our composed tests, and every task not ours): each
reuse entry vs its best single member and vs the union expert — the difference, its interval, the
exact McNemar p and Holm-adjusted p over the whole run (many comparisons are made; a reader should
not have to correct for them by eye).
"""

from __future__ import annotations

from collections import defaultdict

from lorareuse_plugin.report.tables import REUSE_GROUPS, best_member, cell_means, is_question, pooled
from lorareuse_plugin.stats import holm, paired_difference
from lorareuse_plugin.stats.intervals import DEFAULT_RESAMPLES
from lorareuse_plugin.stats.paired import Difference


def index_rows(rows: list[dict]) -> dict[tuple, list[dict]]:
    """(library, entry, task) -> that cell's rows (one per seed)."""
    by: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by[(r["library"], r["entry"], r["task"])].append(r)
    return by


def paired(
    by: dict[tuple, list[dict]], library: str, task: str, a: str, b: str, *, resamples: int, seed: int
) -> Difference | None:
    """a − b on the items both entries answered (pooled over seeds), or None when one is missing."""
    if (library, a, task) not in by or (library, b, task) not in by:
        return None
    oa, ca, ia = pooled(by[(library, a, task)])
    ob, _, ib = pooled(by[(library, b, task)])
    right = dict(zip(ib, ob, strict=True))
    keep = [i for i, item in enumerate(ia) if item in right]
    return paired_difference(
        [oa[i] for i in keep], [right[ia[i]] for i in keep], [ca[i] for i in keep], resamples=resamples, seed=seed
    )


def comparisons(
    rows: list[dict], cells: list[dict], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> list[dict]:
    by = index_rows(rows)
    mean = cell_means(cells)
    out = []
    for c in cells:
        if c["group"] not in REUSE_GROUPS or not is_question(c):
            continue
        lib, task = c["library"], c["task"]
        against = []
        if (best := best_member(mean, lib, task, c["experts"])) is not None:
            against.append(("best member", best))
        if (lib, "expert:union", task) in mean:
            against.append(("union", "expert:union"))
        for kind, other in against:
            d = paired(by, lib, task, c["entry"], other, resamples=resamples, seed=seed)
            if d is None:
                continue
            out.append(
                {
                    "library": lib,
                    "familiarity": c["familiarity"],
                    "task": task,
                    "entry": c["entry"],
                    "group": c["group"],
                    "against": kind,
                    "other": other,
                    **d.to_json(),
                }
            )
    for row, p in zip(out, holm([r["mcnemar_p"] for r in out]), strict=True):
        row["p_holm"] = p
    return out


def to_markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    lines = [
        "Paired on the same items: entry − comparison [95% interval], Holm-adjusted exact McNemar p over all "
        f"{len(rows)} comparisons (raw p, discordant counts: `leaderboard.json`).",
        "",
        "| library | task | entry | − best member | − union |",
        "|---|---|---|---:|---:|",
    ]
    keyed: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        keyed.setdefault((r["library"], r["task"], r["entry"]), {})[r["against"]] = r

    def text(r: dict | None) -> str:
        if r is None:
            return ""
        who = f" ({r['other'].removeprefix('expert:')})" if r["against"] == "best member" else ""
        return f"{r['diff']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}] p={r['p_holm']:.2g}{who}"

    for (lib, task, entry), by_kind in keyed.items():
        lines.append(
            f"| {lib} | {task.removeprefix('lorareuse_')} | {entry} | {text(by_kind.get('best member'))} | "
            f"{text(by_kind.get('union'))} |"
        )
    return "\n".join(lines) + "\n"
