"""Intervals that stay honest at 0 and 1 (a binomial ±1.96·stderr collapses to ±0 there).

One seed, independent items: Wilson. Items that share an answer (two people born in the same
country) are not independent evidence: a seeded cluster bootstrap resamples whole clusters; its
percentile interval collapses at 0 and 1 too, so it is widened to at least the Wilson interval
with the *cluster count* as n (the number of independent units). Several seeds: a t-interval over
the per-seed scores, reported beside the pooled-item interval.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
MIN_RESAMPLES = 100
DEFAULT_RESAMPLES = 1000
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
_T975 |= {15: 2.131, 20: 2.086, 30: 2.042}


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: (low, high); (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    if successes <= 0:
        return 0.0, z * z / (n + z * z)
    if successes >= n:
        return n / (n + z * z), 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def t975(df: int) -> float:
    """Two-sided 95% quantile of Student's t (table; 1.96 above 30 degrees of freedom)."""
    if df <= 0:
        return float("nan")
    if df > 30:
        return 1.96
    return _T975[max(k for k in _T975 if k <= df)]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% interval and the name of the method that gave it."""

    value: float
    low: float
    high: float
    method: str
    n: int

    def to_json(self) -> dict:
        return {
            "value": round(self.value, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "interval": self.method,
            "n": self.n,
        }


def t_interval(values: Sequence[float], over: str = "seeds", bounds: tuple[float, float] = (0.0, 1.0)) -> Interval:
    """Mean over ``over`` (seeds) with the t-interval (needs ≥ 2 values; clipped to ``bounds``, a
    rate's [0, 1] by default — pass (-inf, inf) for a quantity that can leave it)."""
    k = len(values)
    mean = sum(values) / k
    if k < 2:
        return Interval(mean, float("nan"), float("nan"), f"t over {over} (needs >= 2 {over})", k)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    half = t975(k - 1) * sd / math.sqrt(k)
    return Interval(mean, max(bounds[0], mean - half), min(bounds[1], mean + half), f"t over {k} {over}", k)


def bootstrap_means(outcomes: Sequence[float], clusters: Iterable[Hashable], resamples: int, rng):
    """``resamples`` means of ``outcomes``, each over whole clusters drawn with replacement from
    ``rng`` (a numpy Generator): the one resampling step every cluster interval here uses."""
    import numpy as np

    index: dict[Hashable, int] = {}
    ids = np.array([index.setdefault(c, len(index)) for c in clusters])
    sums = np.bincount(ids, weights=np.asarray(outcomes, dtype=float), minlength=len(index))
    sizes = np.bincount(ids, minlength=len(index)).astype(float)
    draw = rng.integers(0, len(sums), size=(resamples, len(sums)))
    return sums[draw].sum(axis=1) / sizes[draw].sum(axis=1)


def percentile_95(stats) -> tuple[float, float]:
    import numpy as np

    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def cluster_bootstrap(
    outcomes: Sequence[float], clusters: Sequence[Hashable], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile 95% interval of the mean, resampling whole clusters (seeded, reproducible)."""
    import numpy as np

    if resamples < MIN_RESAMPLES:
        raise ValueError(f"resamples must be >= {MIN_RESAMPLES}, got {resamples}")
    return percentile_95(bootstrap_means(outcomes, clusters, resamples, np.random.default_rng(seed)))


def cell_interval(
    outcomes: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """The interval of one cell's items: Wilson when every item is its own cluster, else the
    cluster bootstrap widened to the Wilson interval at the cluster count (never degenerate)."""
    n = len(outcomes)
    k = float(sum(outcomes))
    mean = k / n if n else float("nan")
    n_clusters = len(set(clusters)) if clusters is not None else n
    if n == 0 or n_clusters == n:
        lo, hi = wilson(k, n)
        return Interval(mean, lo, hi, "wilson", n)
    b_lo, b_hi = cluster_bootstrap(outcomes, clusters, resamples=resamples, seed=seed)
    w_lo, w_hi = wilson(mean * n_clusters, n_clusters)
    return Interval(
        mean, min(b_lo, w_lo), max(b_hi, w_hi), f"cluster bootstrap ({n_clusters} clusters, {resamples} resamples)", n
    )


@dataclass(frozen=True)
class Proportion:
    """k of n correct, with its 95% Wilson interval."""

    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.k, self.n)

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{self.value:.2f} [{lo:.2f}, {hi:.2f}] (n={self.n})"

    def to_json(self) -> dict:
        lo, hi = self.interval
        return {"k": self.k, "n": self.n, "value": round(self.value, 4), "ci95": [round(lo, 4), round(hi, 4)]}
