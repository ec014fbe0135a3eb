"""Rows of results -> seed aggregation, composition gap, CSV and Markdown.

Cell interval: with several seeds, a 95% t-interval over the per-seed scores; with one seed,
±1.96·stderr from lm-eval (binomial error over the test items only — one seed is an anecdote).
Composition gap = (method − best single member expert) / (oracle expert − best single member
expert): 0 = no better than one expert alone, 1 = as good as training on all the data.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

from lorareuse_plugin.report.ladder import CONTAMINATED, is_contaminated

_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    15: 2.131,
    20: 2.086,
    30: 2.042,
}
MIN_DENOMINATOR = 1e-9

FIELDS = (
    "library",
    "family",
    "familiarity",
    "seed",
    "entry",
    "group",
    "method",
    "experts",
    "task",
    "form",
    "metric",
    "value",
    "stderr",
    "n",
)


def t975(df: int) -> float:
    if df <= 0:
        return float("nan")
    keys = sorted(k for k in _T975 if k <= df)
    return _T975[keys[-1]] if df <= 30 else 1.96


def aggregate(rows: list[dict]) -> list[dict]:
    """One cell per (library, entry, task): mean over seeds and a 95% interval half-width."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["library"], r["entry"], r["task"])].append(r)
    out = []
    for (_library, entry, task), rs in cells.items():
        values = [r["value"] for r in rs]
        mean = sum(values) / len(values)
        if len(values) > 1:
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            half = t975(len(values) - 1) * sd / math.sqrt(len(values))
        else:
            se = rs[0]["stderr"]
            half = 1.96 * se if isinstance(se, int | float) else float("nan")
        first = rs[0]
        out.append(
            {
                **{
                    k: first[k]
                    for k in ("library", "family", "familiarity", "group", "method", "experts", "form", "metric")
                },
                "entry": entry,
                "task": task,
                "mean": mean,
                "ci95": half,
                "seeds": len(values),
                "values": values,
            }
        )
    return out


def gaps(cells: list[dict]) -> list[dict]:
    """Composition gap per (library, entry, task) for every reuse entry."""
    by = {(c["library"], c["entry"], c["task"]): c["mean"] for c in cells}
    out = []
    for c in cells:
        if c["group"] not in ("library-2", "library-3", "library-3ac"):
            continue
        members = [e for e in c["experts"].split("+") if e not in ("target", *CONTAMINATED)]
        singles = [by.get((c["library"], f"expert:{e}", c["task"])) for e in members]
        singles = [s for s in singles if s is not None]
        oracle = by.get((c["library"], "expert:oracle", c["task"]))
        if not singles or oracle is None:
            continue
        best = max(singles)
        denom = oracle - best
        gap = (c["mean"] - best) / denom if denom > MIN_DENOMINATOR else None
        out.append(
            {
                "library": c["library"],
                "entry": c["entry"],
                "task": c["task"],
                "gap": gap,
                "method": c["mean"],
                "best_single": best,
                "oracle": oracle,
            }
        )
    return out


def to_csv(cells: list[dict], gap_rows: list[dict]) -> str:
    gap_of = {(g["library"], g["entry"], g["task"]): g["gap"] for g in gap_rows}
    buf = io.StringIO()
    cols = [
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
        "ci95",
        "seeds",
        "values",
        "composition_gap",
    ]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for c in cells:
        row = {k: c[k] for k in cols if k in c}
        row["values"] = " ".join(f"{v:.4f}" for v in c["values"])
        row["mean"] = f"{c['mean']:.4f}"
        row["ci95"] = "" if math.isnan(c["ci95"]) else f"{c['ci95']:.4f}"
        g = gap_of.get((c["library"], c["entry"], c["task"]))
        row["composition_gap"] = "" if g is None else f"{g:.3f}"
        w.writerow(row)
    return buf.getvalue()


def _short(task: str) -> str:
    return task.removeprefix("lorareuse_")


def to_markdown(cells: list[dict], gap_rows: list[dict]) -> str:
    lines: list[str] = []
    libraries = list(dict.fromkeys(c["library"] for c in cells))
    for lib in libraries:
        mine = [c for c in cells if c["library"] == lib]
        tasks = list(dict.fromkeys(c["task"] for c in mine))
        entries = list(dict.fromkeys(c["entry"] for c in mine))
        val = {(c["entry"], c["task"]): c for c in mine}
        flagged = {c["entry"] for c in mine if is_contaminated(c["experts"])}
        seeds = max(c["seeds"] for c in mine)
        lines += [f"### {lib} ({seeds} seed{'s' if seeds > 1 else ''}; mean ± 95% interval)", ""]
        lines.append("| entry | " + " | ".join(_short(t) for t in tasks) + " |")
        lines.append("|---|" + "---:|" * len(tasks))
        for e in entries:
            cells_txt = []
            for t in tasks:
                c = val.get((e, t))
                if c is None:
                    cells_txt.append("")
                elif math.isnan(c["ci95"]):
                    cells_txt.append(f"{c['mean']:.2f}")
                else:
                    cells_txt.append(f"{c['mean']:.2f} ± {c['ci95']:.2f}")
            lines.append(f"| {e}{' ⚠' if e in flagged else ''} | " + " | ".join(cells_txt) + " |")
        if flagged:
            lines += [
                "",
                "⚠ contaminated by design: `ac` is trained on the test's own composed facts (the paper's "
                '"expert trained on the target task"), so these rows are not reuse without the test data.',
            ]
        mine_gaps = [g for g in gap_rows if g["library"] == lib]
        if mine_gaps:
            gtasks = list(dict.fromkeys(g["task"] for g in mine_gaps))
            gval = {(g["entry"], g["task"]): g["gap"] for g in mine_gaps}
            lines += ["", "Composition gap (method − best single member) / (oracle expert − best single member):", ""]
            lines.append("| entry | " + " | ".join(_short(t) for t in gtasks) + " |")
            lines.append("|---|" + "---:|" * len(gtasks))
            for e in dict.fromkeys(g["entry"] for g in mine_gaps):
                row = [gval.get((e, t)) for t in gtasks]
                lines.append(f"| {e} | " + " | ".join("n/a" if v is None else f"{v:.2f}" for v in row) + " |")
        lines.append("")
    return "\n".join(lines)
