"""The toy's mechanism measured in a real model: do a two-hop prompt's MLP keys overlap its one-hop
prompts' keys, and how much of the experts' MLP read-out edit lands on the two-hop key?

The toy's key is the input of its read-out W; a Llama layer's is the input of ``mlp.down_proj``
(``act(gate)·up``) at the prompt's last token, where the answer is read. For each test person we take
the two-hop question, its hop1 probe (X's country) and hop2 probe (that country's capital), and per
layer report: the cosine of the two-hop key with each one-hop key, the same cosine with *another*
person's hop1 key (the baseline: MLP inputs of any two prompts share much of their direction), and
the effect ratio ‖ΔW·k_two-hop‖ / ‖ΔW·k_own‖ of each expert's down_proj delta (and of their mean) —
in the toy the share of an edit that lands on the two-hop key, (k₂₁·k₂)/‖k₂‖² — and whether what the
hop2 edit writes on the two-hop prompt is what it writes on *its* bridge's hop2 prompt (the cosine of
the two writes) or no more than on another bridge's.
Only down_proj is the toy's W: the experts also change attention and the MLP's input, which the
toy has no analogue for.
"""

from __future__ import annotations

import math
from pathlib import Path

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.stats.intervals import t_interval

COLUMNS = (
    "cos vs hop1",
    "cos vs another's hop1",
    "cos vs hop2",
    "cos vs another's hop2",
    "effect ratio hop1 expert",
    "effect ratio hop2 expert",
    "effect ratio mean",
    "hop2 write: its bridge",
    "hop2 write: another bridge",
)


def _mean_ci(values: list[float]) -> dict:
    """Mean and t-interval over people, unclipped (cosines go below 0, effect ratios above 1)."""
    ci = t_interval(values, over="people", bounds=(-math.inf, math.inf))
    return {"mean": ci.value, "ci95": [ci.low, ci.high], "n": ci.n}


def _keys(model, tok, prompts: list[str]):
    """[layers, prompts, intermediate]: the down_proj input at each prompt's last token."""
    import torch

    layers = model.model.layers
    seen: dict[int, list] = {i: [] for i in range(len(layers))}
    hooks = [
        layer.mlp.down_proj.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(args[0][0, -1].clone()))
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            for p in prompts:
                model(**tok(p, return_tensors="pt"))
    finally:
        for h in hooks:
            h.remove()
    return torch.stack([torch.stack(seen[i]) for i in range(len(layers))])


def _ratio(two, own, delta) -> list[float]:
    """‖ΔW·k_two-hop‖ / ‖ΔW·k_own‖ per person."""
    return ((two @ delta.T).norm(dim=1) / (own @ delta.T).norm(dim=1)).tolist()


def bridge(library: str | Path, base: str | None = None, n: int = 32) -> dict:
    """The per-layer table for a twohop library with members hop1 and hop2."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorareuse_plugin.base.resolve import resolve_base
    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.report.leaderboard import base_path_of
    from lorareuse_plugin.reuse.lora_io import read_experts

    lib = load_library(library)
    if not lib.has_world or lib.manifest["data"]["family"] != "twohop":  # type: ignore[index]
        raise ConfigError(f"{lib.describe()} is not a twohop library of ours: the bridge needs its test world")
    missing = [e for e in ("hop1", "hop2") if e not in lib.expert_names]
    if missing:
        raise ConfigError(f"{lib.describe()} has no expert {', '.join(missing)}: the bridge compares hop1 and hop2")
    splits = lib.dataset().splits
    n = min(n, len(splits["test"]))
    if n < 2:
        raise ConfigError(f"the bridge needs at least 2 test questions, got {n}")
    path = resolve_base(base_path_of(lib, base), progress=False).name_or_path
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(path)
    prompts = {
        k: [d["prompt"] for d in splits[s][:n]]
        for k, s in (("two", "test"), ("h1", "probe_hop1"), ("h2", "probe_hop2"))
    }
    keys = {k: _keys(model, tok, v) for k, v in prompts.items()}
    hop1, hop2 = read_experts(lib, ["hop1", "hop2"])
    cos = torch.nn.functional.cosine_similarity
    rows = []
    for layer in range(keys["two"].shape[0]):
        module = next((m for m in hop1.modules if m.endswith(f"layers.{layer}.mlp.down_proj")), None)
        two, h1, h2 = keys["two"][layer], keys["h1"][layer], keys["h2"][layer]
        row = {"layer": layer}
        for column, other in zip(COLUMNS[:4], (h1, h1.roll(1, 0), h2, h2.roll(1, 0)), strict=True):
            row[column] = _mean_ci(cos(two, other).tolist())
        if module is not None and module in hop2.modules:
            d1, d2 = hop1.delta(module), hop2.delta(module)
            row[COLUMNS[4]] = _mean_ci(_ratio(two, h1, d1))
            row[COLUMNS[5]] = _mean_ci(_ratio(two, h2, d2))
            mean = (d1 + d2) / 2
            own = torch.stack([(h1 @ mean.T).norm(dim=1), (h2 @ mean.T).norm(dim=1)]).mean(0)
            row[COLUMNS[6]] = _mean_ci(((two @ mean.T).norm(dim=1) / own).tolist())
            # what the hop2 edit writes on the two-hop prompt vs on its bridge's own hop2 prompt:
            # a toy edit writes the same vector on both only in proportion to their key overlap
            row[COLUMNS[7]] = _mean_ci(cos(two @ d2.T, h2 @ d2.T).tolist())
            row[COLUMNS[8]] = _mean_ci(cos(two @ d2.T, h2.roll(1, 0) @ d2.T).tolist())
        rows.append(row)
    return {"library": str(lib.root), "base": str(path), "n": n, "layers": rows}


def bridge_markdown(result: dict) -> str:
    lines = [
        f"Real model: {Path(result['library']).name} on {Path(result['base']).name}, n = {result['n']} test people, "
        "mean [95 % t-interval] of the down_proj input at the last prompt token:",
        "",
        "| layer | " + " | ".join(COLUMNS) + " |",
        "|---:|" + "---:|" * len(COLUMNS),
    ]
    for row in result["layers"]:
        cells = []
        for c in COLUMNS:
            v = row.get(c)
            cells.append("n/a" if v is None else f"{v['mean']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]")
        lines.append(f"| {row['layer']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
