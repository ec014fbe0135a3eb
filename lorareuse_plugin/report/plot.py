"""``leaderboard.png``: one panel per (library, task), a bar per ladder entry with its 95% interval,
the task's chance level as a dashed line, bars coloured and ordered by the ladder's groups (baseline /
experts / 2-library / 3-library / upper bounds) so the paper's figure can be read off it."""

from __future__ import annotations

import math
from pathlib import Path

GROUPS = {
    "baseline": ("#999999", "baseline"),
    "expert": ("#4C72B0", "single experts"),
    "library-2": ("#DD8452", "2-expert library"),
    "library-3": ("#55A868", "3-expert library (+target)"),
    "library-3ac": ("#C44E52", "3-expert library (+ac, contaminated)"),
    "library": ("#DD8452", "library (all adapters)"),
    "upper": ("#8172B3", "upper bounds"),
}


def plot(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels = list(dict.fromkeys((c["library"], c["task"]) for c in cells))
    order = list(GROUPS)
    first = {}
    for c in cells:
        first.setdefault(c["entry"], c["group"])
    entries = sorted(dict.fromkeys(first), key=lambda e: order.index(first[e]) if first[e] in order else len(order))
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 0.28 * len(entries) * rows + 2.0), squeeze=False, sharey=True
    )
    by = {(c["library"], c["task"], c["entry"]): c for c in cells}
    for ax, (lib, task) in zip(axes.flat, panels, strict=False):
        ys, vals, lows, highs, colors = [], [], [], [], []
        chance = None
        for i, e in enumerate(entries):
            c = by.get((lib, task, e))
            if c is None:
                continue
            chance = c.get("chance", chance)
            ys.append(i)
            vals.append(c["mean"])
            lows.append(0.0 if math.isnan(c["low"]) else c["mean"] - c["low"])
            highs.append(0.0 if math.isnan(c["high"]) else c["high"] - c["mean"])
            colors.append(GROUPS.get(c["group"], ("#333333", ""))[0])
        ax.barh(ys, vals, xerr=[lows, highs], color=colors, capsize=2)
        if chance is not None and not math.isnan(chance):
            ax.axvline(chance, color="black", linestyle="--", linewidth=0.8)
        ax.set_xlim(0, 1.05)
        ax.set_title(f"{lib}\n{task.removeprefix('lorareuse_')} (dashed: chance)", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(entries)))
        ax.set_yticklabels(entries)
    axes[0, 0].invert_yaxis()  # the y axis is shared: invert once, the ladder reads top-down
    present = [g for g in GROUPS if g in set(first.values())]
    fig.legend(
        handles=[Patch(color=GROUPS[g][0], label=GROUPS[g][1]) for g in present],
        loc="lower center",
        ncol=min(3, len(present)),
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)
