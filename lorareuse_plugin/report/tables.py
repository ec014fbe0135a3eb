"""Rows of results -> cells with honest intervals and chance, the composition gap, CSV and Markdown.

Cell interval (``stats``): one seed — Wilson over the items, or a cluster bootstrap when items share
a bridge; several seeds — the t-interval over the per-seed scores joined with the pooled-item
interval (the wider of the two bounds each side), so a cell is never ``± 0`` at 0 or 1.
Composition gap = (method − best single member) / (oracle expert − best single member), reported
only where the denominator is at least ``MIN_GAP_DENOMINATOR``; elsewhere the reason is printed.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

from lorareuse_plugin.report.chance import chance_level
from lorareuse_plugin.report.ladder import CONTAMINATED, is_contaminated
from lorareuse_plugin.stats import cell_interval, t_interval
from lorareuse_plugin.stats.intervals import DEFAULT_RESAMPLES

MIN_GAP_DENOMINATOR = 0.1
FLOOR = 0.1  # an oracle below this composes nothing: the gap has no scale
BELOW_CHANCE = "▽"
REUSE_GROUPS = ("library-2", "library-3", "library-3ac", "library")  # "library": foreign adapters, all of them


def pooled(rows: list[dict]) -> tuple[list[int], list[tuple], list[tuple]]:
    """(outcomes, clusters, item ids) of several seeds' rows; clusters and ids keyed by seed."""
    outcomes, clusters, ids = [], [], []
    for r in sorted(rows, key=lambda r: r["seed"]):
        it = r["items"]
        outcomes += it.correct
        clusters += [(r["seed"], c) for c in it.clusters]
        ids += [(r["seed"], d) for d in it.doc_ids]
    return outcomes, clusters, ids


def aggregate(rows: list[dict], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> list[dict]:
    """One cell per (library, entry, task): mean, 95% interval, n, chance and how each was computed."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["library"], r["entry"], r["task"])].append(r)
    chance: dict[tuple, tuple[float, str]] = {}
    out = []
    for (library, entry, task), rs in cells.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        first = rs[0]
        outcomes, clusters, _ = pooled(rs)
        values = [r["value"] for r in rs]
        items = cell_interval(outcomes, clusters, resamples=resamples, seed=seed)
        low, high, method = items.low, items.high, items.method
        if len(rs) > 1:
            over_seeds = t_interval(values)
            low, high = min(low, over_seeds.low), max(high, over_seeds.high)
            method = f"{over_seeds.method} joined with pooled items: {items.method}"
        if (library, task) not in chance:
            chance[(library, task)] = chance_level(first["items"], first["form"])
        level, how = chance[(library, task)]
        mean = sum(values) / len(values)
        out.append(
            {
                **{
                    k: first[k]
                    for k in ("library", "family", "familiarity", "group", "method", "experts", "form", "metric")
                },
                "split": first.get("split"),
                "entry": entry,
                "task": task,
                "mean": mean,
                "low": low,
                "high": high,
                "interval": method,
                "n": len(outcomes),
                "seeds": len(values),
                "values": values,
                "chance": level,
                "chance_how": how,
                "at_or_below_chance": mean <= level + 1e-12,
            }
        )
    return out


COMPOSED_FORMS = ("gen", "cot", "mc")


def is_composed(cell: dict) -> bool:
    """A cell of the composed test itself (not a probe, not the in-context control)."""
    return cell.get("split") == "test" and cell["form"] in COMPOSED_FORMS


def is_question(cell: dict) -> bool:
    """A cell a reuse entry is compared on: our composed test, or any task that is not ours."""
    return is_composed(cell) or cell.get("split") is None


def members_of(experts: str) -> list[str]:
    """The knowledge experts of a reuse entry (not ``target`` nor contaminated ones)."""
    return [e for e in experts.split("+") if e not in ("target", *CONTAMINATED)]


def cell_means(cells: list[dict]) -> dict[tuple, float]:
    """(library, entry, task) -> mean."""
    return {(c["library"], c["entry"], c["task"]): c["mean"] for c in cells}


def best_member(means: dict[tuple, float], library: str, task: str, experts: str) -> str | None:
    """The ``expert:<e>`` entry scoring highest on ``task`` among a reuse entry's knowledge members."""
    singles = [f"expert:{e}" for e in members_of(experts) if (library, f"expert:{e}", task) in means]
    return max(singles, key=lambda e: means[(library, e, task)]) if singles else None


def gaps(cells: list[dict]) -> list[dict]:
    """Composition gap per reuse (library, entry, task), or why it is not defined there."""
    by = cell_means(cells)
    out = []
    for c in cells:
        if c["group"] not in REUSE_GROUPS or not is_composed(c):
            continue
        member = best_member(by, c["library"], c["task"], c["experts"])
        oracle = by.get((c["library"], "expert:oracle", c["task"]))
        union = by.get((c["library"], "expert:union", c["task"]))
        if member is None or oracle is None:
            continue
        best = by[(c["library"], member, c["task"])]
        denom = oracle - best
        gap, why = None, ""
        if oracle < FLOOR:
            why = "floor"
        elif denom < MIN_GAP_DENOMINATOR:
            why = "ceiling"
        else:
            gap = (c["mean"] - best) / denom
        out.append(
            {
                "library": c["library"],
                "entry": c["entry"],
                "task": c["task"],
                "gap": gap,
                "why": why,
                "method": c["mean"],
                "best_single": best,
                "oracle": oracle,
                "minus_union": None if union is None else c["mean"] - union,
            }
        )
    return out


CSV_COLUMNS = (
    "library",
    "family",
    "familiarity",
    "group",
    "entry",
    "method",
    "experts",
    "task",
    "form",
    "metric",
    "mean",
    "n",
    "low",
    "high",
    "interval",
    "chance",
    "at_or_below_chance",
    "seeds",
    "values",
    "composition_gap",
    "minus_union",
)


def to_csv(cells: list[dict], gap_rows: list[dict]) -> str:
    gap_of = {(g["library"], g["entry"], g["task"]): g for g in gap_rows}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    for c in cells:
        row = {k: c[k] for k in CSV_COLUMNS if k in c}
        row["values"] = " ".join(f"{v:.4f}" for v in c["values"])
        for k in ("mean", "low", "high", "chance"):
            row[k] = f"{c[k]:.4f}"
        g = gap_of.get((c["library"], c["entry"], c["task"]))
        row["composition_gap"] = "" if g is None else (f"{g['gap']:.3f}" if g["gap"] is not None else g["why"])
        row["minus_union"] = "" if g is None or g["minus_union"] is None else f"{g['minus_union']:.3f}"
        w.writerow(row)
    return buf.getvalue()


def short(task: str) -> str:
    return task.removeprefix("lorareuse_")


def cell_text(c: dict) -> str:
    mark = BELOW_CHANCE if c.get("at_or_below_chance") else ""
    if math.isnan(c["low"]):
        return f"{c['mean']:.2f}{mark}"
    return f"{c['mean']:.2f} [{c['low']:.2f}, {c['high']:.2f}]{mark}"


def to_markdown(cells: list[dict], gap_rows: list[dict]) -> str:
    lines: list[str] = []
    libraries = list(dict.fromkeys(c["library"] for c in cells))
    for lib in libraries:
        mine = [c for c in cells if c["library"] == lib]
        tasks = list(dict.fromkeys(c["task"] for c in mine))
        entries = list(dict.fromkeys(c["entry"] for c in mine))
        val = {(c["entry"], c["task"]): c for c in mine}
        head = {t: next(c for c in mine if c["task"] == t) for t in tasks}
        flagged = {c["entry"] for c in mine if is_contaminated(c["experts"])}
        seeds = max(c["seeds"] for c in mine)
        lines += [f"### {lib} ({seeds} seed{'s' if seeds > 1 else ''}; mean [95% interval])", ""]
        lines.append("| entry | " + " | ".join(f"{short(t)} (n={head[t]['n']})" for t in tasks) + " |")
        lines.append("|---|" + "---:|" * len(tasks))
        lines.append("| *answer-prior (chance)* | " + " | ".join(f"*{head[t]['chance']:.2f}*" for t in tasks) + " |")
        for e in entries:
            row = [cell_text(val[(e, t)]) if (e, t) in val else "" for t in tasks]
            lines.append(f"| {e}{' ⚠' if e in flagged else ''} | " + " | ".join(row) + " |")
        methods = sorted({c["interval"] for c in mine})
        lines += [
            "",
            f"{BELOW_CHANCE} at or below chance. Chance per task: "
            + "; ".join(f"{short(t)}: {head[t]['chance_how']}" for t in tasks)
            + ". Intervals: "
            + "; ".join(methods)
            + ".",
        ]
        if flagged:
            lines += [
                "",
                "⚠ contaminated by design: `ac` is trained on the test's own composed facts (the paper's "
                '"expert trained on the target task"), so these rows are not reuse without the test data.',
            ]
        mine_gaps = [g for g in gap_rows if g["library"] == lib]
        if mine_gaps:
            gtasks = list(dict.fromkeys(g["task"] for g in mine_gaps))
            gval = {(g["entry"], g["task"]): g for g in mine_gaps}
            first = {t: next(g for g in mine_gaps if g["task"] == t) for t in gtasks}
            lines += [
                "",
                "Composition gap (method − best single member) / (oracle expert − best single member), "
                f"where the denominator is ≥ {MIN_GAP_DENOMINATOR}; then method − union expert. "
                f"`floor`: the oracle expert scores < {FLOOR}, nothing to scale by; `ceiling`: the oracle is not "
                f"{MIN_GAP_DENOMINATOR} above the best member. Oracle expert per task: "
                + "; ".join(f"{short(t)} {first[t]['oracle']:.2f}" for t in gtasks)
                + ".",
                "",
            ]
            lines.append("| entry | " + " | ".join(f"{short(t)} gap | − union" for t in gtasks) + " |")
            lines.append("|---|" + "---:|---:|" * len(gtasks))
            for e in dict.fromkeys(g["entry"] for g in mine_gaps):
                row = []
                for t in gtasks:
                    g = gval.get((e, t))
                    if g is None:
                        row += ["", ""]
                        continue
                    row.append(f"{g['gap']:.2f}" if g["gap"] is not None else g["why"])
                    row.append("" if g["minus_union"] is None else f"{g['minus_union']:+.2f}")
                lines.append(f"| {e} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)
