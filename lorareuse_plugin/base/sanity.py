"""Sanity of the science, measured at build time: the base knows the real facts and no test fact.

Real (R) one-hop probes should be answered; fictional (F) probes only at chance. R two-hop
questions were never in the corpus (only their two facts, separately), so those rows measure
how far the base composes two known facts by itself, directly and step by step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lorareuse_plugin.base.evaluate import accuracy, mc_accuracy
from lorareuse_plugin.data.build import build_dataset, make_spec

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedTokenizerBase

CHECKS = (  # (label, family, familiarity, split, cot)
    ("twohop R hop1 probe", "twohop", "R", "probe_hop1", False),
    ("twohop R hop2 probe", "twohop", "R", "probe_hop2", False),
    ("twohop R two-hop", "twohop", "R", "test", False),
    ("twohop R two-hop CoT", "twohop", "R", "test", True),
    ("twohop H two-hop CoT", "twohop", "H", "test", True),
    ("twohop H hop2 probe (real)", "twohop", "H", "probe_hop2", False),
    ("twohop H hop1 probe (fictional)", "twohop", "H", "probe_hop1", False),
    ("twohop F hop1 probe", "twohop", "F", "probe_hop1", False),
    ("twohop F hop2 probe", "twohop", "F", "probe_hop2", False),
    ("twohop F two-hop", "twohop", "F", "test", False),
    ("math_ks R knowledge probe", "math_ks", "R", "probe_knowledge", False),
    ("math_ks R composed", "math_ks", "R", "test", False),
    ("math_ks F knowledge probe", "math_ks", "F", "probe_knowledge", False),
)


def sanity_report(model: torch.nn.Module, tok: PreTrainedTokenizerBase) -> dict[str, dict[str, float]]:
    """label -> {"exact_match": …, "mc_acc": …, "mc_chance": …} on the default seed-0 world."""
    report: dict[str, dict[str, float]] = {}
    for label, family, fam, split, cot in CHECKS:
        docs = build_dataset(make_spec(family, fam)).splits[split]
        row = {"exact_match": round(accuracy(model, tok, docs, cot=cot), 3)}
        if not cot:
            row["mc_acc"] = round(mc_accuracy(model, tok, docs), 3)
            row["mc_chance"] = round(sum(1 / len(d["choices"]) for d in docs) / len(docs), 3)
        report[label] = row
    return report


def format_report(report: dict[str, dict[str, float]]) -> str:
    lines = [f"{'check':34} {'exact':>6} {'mc':>6} {'chance':>6}"]
    for label, row in report.items():
        mc = f"{row['mc_acc']:.2f}" if "mc_acc" in row else "-"
        chance = f"{row['mc_chance']:.2f}" if "mc_chance" in row else "-"
        lines.append(f"{label:34} {row['exact_match']:6.2f} {mc:>6} {chance:>6}")
    return "\n".join(lines)
