"""The seed's small study, run on our chains: encoder depth, dropout and the pretraining objective,
one factor at a time from the default recipe, held-out faithfulness accuracy per cell.

Every cell is an ordinary cached build (`lorareuse rescorer build` with the cell's options), so the
table is read from the builds' own markers and a rerun costs nothing once they exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from lorareuse_plugin.rescore.model import RescorerConfig, accuracy_rows, build_rescorer, read_info

CELLS: dict[str, dict] = {
    "default (4 layers, dropout 0.1, MLM + next sentence)": {},
    "2 layers": {"layers": 2},
    "6 layers": {"layers": 6},
    "dropout 0": {"dropout": 0.0},
    "MLM only": {"nsp": False},
}


def run_study(seeds: tuple[int, ...] = (0,), progress: bool = True, log: Callable[[str], None] = print) -> str:
    """Build every cell (cached) and return the Markdown table: one row per cell and seed."""
    lines = [
        "| cell | seed | train s | chains | n | rule | pll | nsp | head |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, change in CELLS.items():
        for seed in seeds:
            cfg = replace(RescorerConfig(), seed=seed, **change)
            info = read_info(build_rescorer(cfg, progress=progress, log=log)) or {}
            seconds = info.get("train_seconds", "n/a")
            lines += [f"| {name} | {seed} | {seconds} | {row} |" for row in accuracy_rows(info)]
    return "\n".join(lines)
