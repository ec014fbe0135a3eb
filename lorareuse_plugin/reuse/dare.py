"""``dare``: DARE in delta space (Yu et al. 2024): drop each ΔW entry with probability ``drop``,
rescale survivors by 1/(1-drop), then take the weighted sum (the mean for uniform weights).
Seeded, so the same spec gives the same adapter; compressed by SVD to ``rank`` like ``ties``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.delta_mean import MergeResult
from lorareuse_plugin.reuse.dense import error_stats, low_rank
from lorareuse_plugin.reuse.lora_io import LoraFactors, module_shapes

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class Params:
    drop: float = field(default=0.5, metadata={"help": "probability of dropping an entry [0, 1)"})
    seed: int = field(default=0, metadata={"help": "seed of the drop masks"})
    rank: int | None = field(default=None, metadata={"help": "rank of the written adapter (default Σ r_i)"})

    def validate(self, method: str) -> None:
        if not 0 <= self.drop < 1:
            raise ConfigError(f"{method}: drop={self.drop} is invalid: use a value in [0, 1)")
        if self.rank is not None and self.rank < 1:
            raise ConfigError(f"{method}: rank={self.rank} is invalid: use a positive integer")


def dare_dense(deltas: list[torch.Tensor], weights: list[float], drop: float, generator: torch.Generator):
    import torch

    merged = torch.zeros_like(deltas[0])
    for d, w in zip(deltas, weights, strict=True):
        keep = torch.rand(d.shape, generator=generator) >= drop
        merged += w * d * keep / (1 - drop)
    return merged


def merge(adapters: list[LoraFactors], weights: list[float], params: Params) -> MergeResult:
    import torch

    rank = params.rank or sum(next(iter(ad.modules.values()))[0].shape[0] for ad in adapters)
    gen = torch.Generator().manual_seed(params.seed)
    out, errors = {}, {}
    for module, (d_out, d_in) in module_shapes(adapters).items():  # sorted: same masks every run
        deltas = [ad.delta(module) if module in ad.modules else torch.zeros(d_out, d_in) for ad in adapters]
        a, b, errors[module] = low_rank(dare_dense(deltas, weights, params.drop, gen), rank)
        out[module] = (a, b)
    return MergeResult(out, {"rank": rank, "drop": params.drop, "seed": params.seed, **error_stats(errors)})
