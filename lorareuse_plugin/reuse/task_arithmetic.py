"""``task_arithmetic``: Σ λ·ΔW_i (Ilharco et al. 2023), exactly, by rank concatenation.

The simple thing a practitioner tries first: add the task vectors. With ``lambda=1`` (the default)
it is the *sum* of the updates, not their mean — that difference from ``delta_mean`` is the point
(``lambda=1/n`` is ``delta_mean``; a test checks it). Every expert gets the same λ: per-expert
weights belong to ``delta_mean``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.delta_mean import MergeResult, concat
from lorareuse_plugin.reuse.lora_io import LoraFactors


@dataclass(frozen=True)
class Params:
    ALIASES = {"lambda": "lambda_"}  # ``lambda`` is a Python keyword
    lambda_: float = field(default=1.0, metadata={"help": "scale of every task vector (default 1: the sum)"})

    def validate(self, method: str) -> None:
        if not math.isfinite(self.lambda_):
            raise ConfigError(f"{method}: lambda={self.lambda_} is not a finite number: use e.g. lambda=1.0")
        if self.lambda_ == 0:
            raise ConfigError(f"{method}: lambda=0 zeroes every update (that is the base): use method=base")


def check_spec(spec) -> None:
    n = len(spec.experts)
    if any(abs(w - 1.0 / n) > 1e-12 for w in spec.weights):
        raise ConfigError(
            "task_arithmetic scales every expert by the same lambda: drop weights= (or use delta_mean with weights=)"
        )


def merge(adapters: list[LoraFactors], weights: list[float], params: Params) -> MergeResult:
    factors = concat(adapters, [params.lambda_] * len(adapters))
    rank = next(iter(factors.values()))[0].shape[0]
    return MergeResult(factors, {"rank": rank, "exact": True, "lambda": params.lambda_})
