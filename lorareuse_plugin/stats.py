"""Intervals that stay honest at 0 and 1 (a binomial ±1.96·stderr collapses to ±0 there)."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
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
