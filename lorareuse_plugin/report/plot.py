"""``leaderboard.png``: one panel per (library, task), a bar per ladder entry with its interval."""

from __future__ import annotations

import math
from pathlib import Path

_COLORS = {
    "baseline": "#999999",
    "expert": "#4C72B0",
    "library-2": "#DD8452",
    "library-3": "#55A868",
    "library-3ac": "#C44E52",
    "upper": "#8172B3",
}


def plot(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((c["library"], c["task"]) for c in cells))
    entries = list(dict.fromkeys(c["entry"] for c in cells))
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 0.28 * len(entries) * rows + 1.5), squeeze=False, sharey=True
    )
    by = {(c["library"], c["task"], c["entry"]): c for c in cells}
    for ax, (lib, task) in zip(axes.flat, panels, strict=False):
        ys, vals, errs, colors = [], [], [], []
        for i, e in enumerate(entries):
            c = by.get((lib, task, e))
            if c is None:
                continue
            ys.append(i)
            vals.append(c["mean"])
            errs.append(0.0 if math.isnan(c["ci95"]) else c["ci95"])
            colors.append(_COLORS.get(c["group"], "#333333"))
        ax.barh(ys, vals, xerr=errs, color=colors, capsize=2)
        ax.set_xlim(0, 1.05)
        ax.set_title(f"{lib}\n{task.removeprefix('lorareuse_')}", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(entries)))
        ax.set_yticklabels(entries)
    axes[0, 0].invert_yaxis()  # the y axis is shared: invert once, the ladder reads top-down
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)
