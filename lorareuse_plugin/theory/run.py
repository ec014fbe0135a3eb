"""`lorareuse theory`: Prop. 1 checked and Thm. 2 measured on random toys, written as theory.json
and theory.png.

Prop. 1 (reconstructed): the rank-one edit ΔW = (i_new − i_old)·kᵀ/‖k‖² flips exactly its fact; it is
the minimum-norm edit; a rank-one LoRA fitted by gradient descent converges to it.
Thm. 2 (reconstructed): the sum of an r1 edit X→Y and an r2 edit Y→Z does not make the two-hop
prompt (X, R21) answer Z. Measured here as a rate over random instances, against the cosine between
the two-hop key and the r2 edit's key — the mechanism: an edit made at one key acts on another key
only through their overlap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.io import write_bytes_atomic
from lorareuse_plugin.stats.intervals import wilson
from lorareuse_plugin.theory.toy import (
    Toy,
    edit_change,
    fit_rank_one,
    min_norm_edit,
    random_toy,
    rank_one_edit,
    store_exact,
    store_trained,
)

OUTCOMES = ("Z (composed)", "Y (the bridge)", "old answer", "other")
STORES: dict[str, Callable[[Toy], np.ndarray]] = {"exact": store_exact, "trained": store_trained}
BINS = np.linspace(0.0, 1.0, 11)
FITTED = 50  # toys per store on which a rank-one LoRA is also fitted by gradient descent (3,000 steps each)


def _margin(logits: np.ndarray, winner: int) -> float:
    rest = np.delete(logits, winner)
    return float(logits[winner] - rest.max())


def _known(toy: Toy, K: np.ndarray, W: np.ndarray) -> set[tuple[int, str]]:
    """The prompts the store answers right (all of them on the exact store)."""
    right = (K @ W.T).argmax(1) == toy.targets()
    return {p for p, ok in zip(toy.prompts(), right, strict=True) if ok}


def prop1(toy: Toy, W: np.ndarray, rng: np.random.Generator, fit: bool = True, known: set | None = None) -> dict | None:
    """Edit one known r1 fact of ``toy`` (store ``W``; ``known``: its known prompts, if computed)
    and check what Prop. 1 says about it."""
    K = toy.keys()
    known = _known(toy, K, W) if known is None else known
    xs = [x for x in range(toy.n) if (x, "R1") in known]
    if not xs:
        return None
    x = int(rng.choice(xs))
    own = toy.prompts().index((x, "R1"))
    k, old = K[own], toy.answer(x, "R1")
    new = int(rng.choice([e for e in range(toy.n) if e != old]))
    d = edit_change(W, k, new, old)
    dW = rank_one_edit(d, k)
    before, after = K @ W.T, K @ (W + dW).T
    others = [i for i in range(len(K)) if i != own]
    least = min_norm_edit(d, k)
    row = {
        "flips": bool(after[own].argmax() == new),
        "margin": _margin(after[own], new),
        "largest change elsewhere": float(np.abs(after[others] - before[others]).max()),
        "other argmax changed": int((after[others].argmax(1) != before[others].argmax(1)).sum()),
        "min-norm relative difference": float(np.linalg.norm(least - dW) / np.linalg.norm(dW)),
    }
    if fit:
        fitted, flat = fit_rank_one(d, k, rng).ravel(), dW.ravel()
        row["gd cosine"] = float(fitted @ flat / (np.linalg.norm(fitted) * np.linalg.norm(flat)))
        row["gd relative error"] = float(np.linalg.norm(fitted - flat) / np.linalg.norm(flat))
    return row


def _outcome(logits: np.ndarray, z: int, y: int, old: int) -> str:
    top = int(logits.argmax())
    return OUTCOMES[0] if top == z else OUTCOMES[1] if top == y else OUTCOMES[2] if top == old else OUTCOMES[3]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def thm2(toy: Toy, W: np.ndarray, rng: np.random.Generator, known: set | None = None) -> dict | None:
    """An r1 edit X→Y and an r2 edit Y→Z, each made on the base store alone (as two LoRAs are
    trained), then summed and averaged; and the control: one edit made at the two-hop key itself.
    Only facts the store knows are edited (None when it knows too few)."""
    K = toy.keys()
    known = _known(toy, K, W) if known is None else known
    index = {p: i for i, p in enumerate(toy.prompts())}
    xs = [x for x in range(toy.n) if (x, "R1") in known and (x, "R21") in known]
    if not xs:
        return None
    x = int(rng.choice(xs))
    y_old, old = toy.r1[x], toy.answer(x, "R21")
    ys = [e for e in range(toy.n) if e not in (y_old, old) and (e, "R2") in known]
    if not ys:
        return None
    y = int(rng.choice(ys))
    z = int(rng.choice([e for e in range(toy.n) if e not in (old, y, toy.r2[y])]))
    hop1, hop2, two = index[(x, "R1")], index[(y, "R2")], index[(x, "R21")]
    k1, k2, k21 = K[hop1], K[hop2], K[two]
    dW1 = rank_one_edit(edit_change(W, k1, y, y_old), k1)
    dW2 = rank_one_edit(edit_change(W, k2, z, toy.r2[y]), k2)
    control = rank_one_edit(edit_change(W, k21, z, old), k21)
    rest = [i for i in range(len(K)) if i not in (hop1, hop2, two)]
    summed = W + dW1 + dW2
    return {
        "cos two-hop vs r2 key": _cos(k21, k2),
        "cos two-hop vs r1 key": _cos(k21, k1),
        # the share of the r2 edit's change that lands on the two-hop key: (k21·k2)/‖k2‖²
        "effect ratio r2 edit": float(k21 @ k2 / (k2 @ k2)),
        "sum": _outcome(summed @ k21, z, y, old),
        "mean": _outcome((W + (dW1 + dW2) / 2) @ k21, z, y, old),
        "control": _outcome((W + control) @ k21, z, y, old),
        "sum keeps both one-hop edits": bool((summed @ k1).argmax() == y and (summed @ k2).argmax() == z),
        "sum changes other facts": float(((K[rest] @ summed.T).argmax(1) != (K[rest] @ W.T).argmax(1)).mean()),
    }


def draw_toy(rng: np.random.Generator) -> tuple[Toy, dict]:
    """One random instance: dimensions, entities, relation weight and two-hop/r2 overlap drawn."""
    n = int(rng.integers(6, 25))
    params = {
        "n": n,
        "d": int(rng.choice([16, 32, 64])),
        "m": int(rng.choice([128, 256])),
        "relation_scale": float(np.exp(rng.uniform(np.log(0.25), np.log(4.0)))),
        "overlap": float(rng.uniform(0.0, 1.0)),
    }
    return random_toy(rng, **params), params


def _rate(hits: int, n: int) -> dict:
    lo, hi = wilson(hits, n)
    return {"k": hits, "n": n, "rate": hits / n if n else None, "ci95": [lo, hi]}


def summarise(rows: list[dict]) -> dict:
    n = len(rows)
    out: dict = {}
    for how in ("sum", "mean", "control"):
        out[how] = {o: _rate(sum(r[how] == o for r in rows), n) for o in OUTCOMES}
    out["sum keeps both one-hop edits"] = _rate(sum(r["sum keeps both one-hop edits"] for r in rows), n)
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        inside = [
            r
            for r in rows
            if lo <= r["cos two-hop vs r2 key"] < hi or (hi == 1.0 and r["cos two-hop vs r2 key"] == 1.0)
        ]
        if inside:
            bins.append(
                {
                    "cos": [float(lo), float(hi)],
                    "n": len(inside),
                    "sum composes": _rate(sum(r["sum"] == OUTCOMES[0] for r in inside), len(inside)),
                    "mean composes": _rate(sum(r["mean"] == OUTCOMES[0] for r in inside), len(inside)),
                    "sum changes other facts": float(np.mean([r["sum changes other facts"] for r in inside])),
                    "effect ratio r2 edit": float(np.mean([r["effect ratio r2 edit"] for r in inside])),
                }
            )
    out["by cosine"] = bins
    return out


def run_theory(
    out: Path,
    seed: int = 0,
    trials: int = 1000,
    bridges: tuple[str, ...] = (),
    base: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Every trial draws a toy, writes its facts into both stores, checks Prop. 1 and measures Thm. 2;
    then the same mechanism in each twohop library of ``bridges`` (theory/bridge.py)."""
    if trials < 1:
        raise ConfigError(f"--trials {trials}: use 1 or more (each trial is one random toy)")
    if seed < 0:
        raise ConfigError(f"--seed {seed}: use a non-negative integer")
    if bridges:
        from lorareuse_plugin.library.manifest import load_library

        for lib in bridges:  # checked before a minute of toys
            load_library(lib)
    rng = np.random.default_rng(seed)
    p1: dict[str, list[dict]] = {s: [] for s in STORES}
    t2: dict[str, list[dict]] = {s: [] for s in STORES}
    accuracy: dict[str, list[float]] = {s: [] for s in STORES}
    for trial in range(trials):
        toy, params = draw_toy(rng)
        for name, store in STORES.items():
            W = store(toy)
            known = _known(toy, toy.keys(), W)
            accuracy[name].append(len(known) / len(toy.prompts()))
            row = prop1(toy, W, rng, fit=trial < FITTED, known=known)
            if row is not None:
                p1[name].append(row)
            row = thm2(toy, W, rng, known=known)
            if row is not None:
                t2[name].append({**params, **row})
    result = {"seed": seed, "trials": trials, "stores": {}}
    for name in STORES:
        rows, fitted = p1[name], [r for r in p1[name] if "gd cosine" in r]
        result["stores"][name] = {
            "facts known by the store (mean share)": float(np.mean(accuracy[name])),
            "prop1": {
                "n": len(rows),
                "gd fits": len(fitted),
                "flips": _rate(sum(r["flips"] for r in rows), len(rows)),
                "smallest margin": min(r["margin"] for r in rows),
                "toys where another answer changed": _rate(sum(r["other argmax changed"] > 0 for r in rows), len(rows)),
                "median largest change elsewhere": float(np.median([r["largest change elsewhere"] for r in rows])),
                "smallest gd cosine": min(r["gd cosine"] for r in fitted),
                "largest gd relative error": max(r["gd relative error"] for r in fitted),
                "largest min-norm relative difference": max(r["min-norm relative difference"] for r in rows),
            },
            "thm2": summarise(t2[name]),
        }
    markdown = [to_markdown(result)]
    if bridges:
        from lorareuse_plugin.theory.bridge import bridge, bridge_markdown

        result["bridge"] = [bridge(lib, base) for lib in bridges]
        markdown += [bridge_markdown(b) for b in result["bridge"]]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "theory.png", plot(result))
    write_bytes_atomic(out / "theory.json", (json.dumps(result, indent=1) + "\n").encode())
    log("\n\n".join(markdown))
    return result


def _cell(rate: dict) -> str:
    """Rate [low, high], the bounds rounded outwards: 1000 of 1000 reads [0.99, 1.00], not [1.00, 1.00]."""
    lo, hi = rate["ci95"]
    return f"{rate['rate']:.2f} [{math.floor(lo * 100) / 100:.2f}, {math.ceil(hi * 100) / 100:.2f}]"


def to_markdown(result: dict) -> str:
    """Prop. 1's checks and Thm. 2's outcome shares per store, then composition by key cosine."""
    lines = [
        f"Prop. 1 (n = {result['trials']} random toys per store, seed {result['seed']}):",
        "",
        "| store | edit flips its fact | smallest margin | toys where another fact's answer changed "
        "| GD LoRA: smallest cosine / largest rel. error | closed form vs least squares |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in result["stores"].items():
        p = s["prop1"]
        lines.append(
            f"| {name} | {_cell(p['flips'])} | {p['smallest margin']:.3f} "
            f"| {_cell(p['toys where another answer changed'])} "
            f"| {p['smallest gd cosine']:.4f} / {p['largest gd relative error']:.1e} "
            f"| {p['largest min-norm relative difference']:.1e} |"
        )
    lines += [
        "",
        "Thm. 2: what the two-hop prompt (X, R21) answers after the r1 edit X→Y and the r2 edit Y→Z:",
        "",
        "| store | edits | " + " | ".join(OUTCOMES) + " |",
        "|---|---|" + "---:|" * len(OUTCOMES),
    ]
    for name, s in result["stores"].items():
        for how, label in (("sum", "summed"), ("mean", "averaged"), ("control", "one edit at the two-hop key")):
            cells = " | ".join(_cell(s["thm2"][how][o]) for o in OUTCOMES)
            lines.append(f"| {name} | {label} | {cells} |")
    lines += ["", "Composition of the summed edits by cos(k(X, R21), k(Y, R2)) (exact store):", ""]
    lines += [
        "| cosine | n | r2 edit's effect ratio | sum composes | mean composes | other facts changed by the sum |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for b in result["stores"]["exact"]["thm2"]["by cosine"]:
        lo, hi = b["cos"]
        lines.append(
            f"| {lo:.1f}–{hi:.1f} | {b['n']} | {b['effect ratio r2 edit']:.2f} | {_cell(b['sum composes'])} "
            f"| {_cell(b['mean composes'])} "
            f"| {b['sum changes other facts']:.2f} |"
        )
    return "\n".join(lines)


def plot(result: dict) -> bytes:
    """Composition rate of the summed and averaged edits against the key cosine, one panel per store."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stores = result["stores"]
    fig, axes = plt.subplots(1, len(stores), figsize=(5.2 * len(stores), 3.8), squeeze=False, sharey=True)
    for ax, (name, s) in zip(axes[0], stores.items(), strict=True):
        bins = s["thm2"]["by cosine"]
        mid = [sum(b["cos"]) / 2 for b in bins]
        for key, colour in (("sum composes", "#C44E52"), ("mean composes", "#4C72B0")):
            rate = [b[key]["rate"] for b in bins]
            err = [
                [r - b[key]["ci95"][0] for r, b in zip(rate, bins, strict=True)],
                [b[key]["ci95"][1] - r for r, b in zip(rate, bins, strict=True)],
            ]
            ax.errorbar(mid, rate, yerr=err, marker="o", capsize=3, color=colour, label=key)
        ax.plot(
            mid,
            [b["sum changes other facts"] for b in bins],
            ls="--",
            color="#999999",
            label="other facts changed (sum)",
        )
        ax.set_title(f"{name} store (n = {result['trials']} toys)")
        ax.set_xlabel("cos(two-hop key, r2 edit's key)")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("share of toys")
    axes[0][0].legend(loc="upper left", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
