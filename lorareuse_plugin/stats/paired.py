"""Differences between two entries: on the same items (paired) or on different test sets.

Paired: the exact McNemar test on the discordant items and Newcombe's score interval for a paired
difference (1998, method 10 — never degenerate, unlike a bootstrap when no item is discordant);
with clustered items, a seeded paired cluster bootstrap widened to at least Newcombe's interval at
the cluster count. Unpaired (different test sets, e.g. F vs R): Newcombe's hybrid score interval,
likewise widened by independent cluster bootstraps. Holm's step-down adjusts many p-values.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from lorareuse_plugin.stats.intervals import DEFAULT_RESAMPLES, MIN_RESAMPLES, bootstrap_means, percentile_95, wilson


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b, c = the two kinds of discordant items."""
    m = b + c
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(b, c) + 1)) / 2**m
    return min(1.0, 2 * tail)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (monotone, capped at 1)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Difference:
    """a − b with its 95% interval; for paired differences also the discordant counts and p."""

    value: float
    low: float
    high: float
    method: str
    n: int
    a_only: int | None = None  # items a gets right and b wrong
    b_only: int | None = None
    p: float | None = None

    def to_json(self) -> dict:
        out = {
            "diff": round(self.value, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "interval": self.method,
            "n": self.n,
        }
        if self.p is not None:
            out |= {"a_only": self.a_only, "b_only": self.b_only, "mcnemar_p": self.p}
        return out


def _newcombe_paired(both: float, a_only: float, b_only: float, neither: float) -> tuple[float, float]:
    n = both + a_only + b_only + neither
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = wilson(both + a_only, n)
    l2, u2 = wilson(both + b_only, n)
    denom = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    cross = both * neither - a_only * b_only  # Newcombe's continuity-corrected phi
    cross = cross - n / 2 if cross > n / 2 else min(cross, 0.0)
    phi = cross / math.sqrt(denom) if denom > 0 else 0.0
    theta = p1 - p2
    lo = theta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    hi = theta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, lo), min(1.0, hi)


def _newcombe_unpaired(k1: float, n1: int, k2: float, n2: int) -> tuple[float, float]:
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    theta = p1 - p2
    return (
        max(-1.0, theta - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
        min(1.0, theta + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)),
    )


def _check(resamples: int) -> None:
    if resamples < MIN_RESAMPLES:
        raise ValueError(f"resamples must be >= {MIN_RESAMPLES}, got {resamples}")


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Difference:
    """mean(a) − mean(b) on the same items (0/1 outcomes, aligned)."""
    _check(resamples)
    if len(a) != len(b):
        raise ValueError(f"paired outcomes must align: {len(a)} vs {len(b)} items")
    n = len(a)
    if n == 0:
        return Difference(float("nan"), -1.0, 1.0, "no items", 0, 0, 0, 1.0)
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    neither = n - both - a_only - b_only
    diff = (a_only - b_only) / n
    p = mcnemar_exact(a_only, b_only)
    n_clusters = len(set(clusters)) if clusters is not None else n
    if n_clusters == n:
        lo, hi = _newcombe_paired(both, a_only, b_only, neither)
        return Difference(diff, lo, hi, "newcombe paired", n, a_only, b_only, p)
    import numpy as np

    scale = n_clusters / n  # Newcombe's interval as if only the clusters were independent
    lo, hi = _newcombe_paired(both * scale, a_only * scale, b_only * scale, neither * scale)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    b_lo, b_hi = percentile_95(bootstrap_means(diffs, clusters, resamples, np.random.default_rng(seed)))
    method = f"paired cluster bootstrap ({n_clusters} clusters, {resamples} resamples)"
    return Difference(diff, min(lo, b_lo), max(hi, b_hi), method, n, a_only, b_only, p)


def unpaired_difference(
    a: Sequence[float],
    b: Sequence[float],
    a_clusters: Sequence[Hashable] | None = None,
    b_clusters: Sequence[Hashable] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Difference:
    """mean(a) − mean(b) on two independent test sets."""
    _check(resamples)
    if not a or not b:
        return Difference(float("nan"), -1.0, 1.0, "no items", 0)
    ca = len(set(a_clusters)) if a_clusters is not None else len(a)
    cb = len(set(b_clusters)) if b_clusters is not None else len(b)
    pa, pb = sum(a) / len(a), sum(b) / len(b)
    lo, hi = _newcombe_unpaired(pa * ca, ca, pb * cb, cb)
    n = len(a) + len(b)
    if ca == len(a) and cb == len(b):
        return Difference(pa - pb, lo, hi, "newcombe unpaired", n)
    import numpy as np

    rng = np.random.default_rng(seed)
    mean_a = bootstrap_means(a, a_clusters or range(len(a)), resamples, rng)
    mean_b = bootstrap_means(b, b_clusters or range(len(b)), resamples, rng)
    b_lo, b_hi = percentile_95(mean_a - mean_b)
    method = f"cluster bootstrap ({ca}+{cb} clusters, {resamples} resamples)"
    return Difference(pa - pb, min(lo, b_lo), max(hi, b_hi), method, n)
