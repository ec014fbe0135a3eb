"""``ties``: TIES-merging in delta space (Yadav et al. 2023), then the best rank-r factors.

Per module: trim each ΔW_i to its ``density`` largest-magnitude entries, elect each entry's sign by
the weighted sum of the trimmed updates, and average (weighted) only the entries that agree with
the elected sign. The merged ΔW is generally full rank, so it is compressed by SVD to ``rank``
(default Σ r_i) and the truncation error is reported.
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
    density: float = field(default=0.2, metadata={"help": "fraction of entries kept per expert (0, 1]"})
    rank: int | None = field(default=None, metadata={"help": "rank of the written adapter (default Σ r_i)"})

    def validate(self, method: str) -> None:
        if not 0 < self.density <= 1:
            raise ConfigError(f"{method}: density={self.density} is invalid: use a value in (0, 1]")
        if self.rank is not None and self.rank < 1:
            raise ConfigError(f"{method}: rank={self.rank} is invalid: use a positive integer")


def trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``ceil(density·n)`` largest |entries| (ties broken by position), zero the rest."""
    import math

    import torch

    k = math.ceil(density * delta.numel())
    if k >= delta.numel():
        return delta.clone()
    flat = delta.flatten()
    keep = torch.topk(flat.abs(), k, sorted=False).indices
    out = torch.zeros_like(flat)
    out[keep] = flat[keep]
    return out.view_as(delta)


def ties_dense(deltas: list[torch.Tensor], weights: list[float], density: float) -> torch.Tensor:
    import torch

    trimmed = torch.stack([trim(d, density) for d in deltas])
    w = torch.tensor(weights, dtype=trimmed.dtype).view(-1, *([1] * (trimmed.ndim - 1)))
    elected = torch.sign((w * trimmed).sum(0))
    agree = (torch.sign(trimmed) == elected) & (trimmed != 0)
    num = (w * trimmed * agree).sum(0)
    den = (w * agree).sum(0)
    return torch.where(den != 0, num / den.clamp_min(1e-30), torch.zeros_like(num))


def merge(adapters: list[LoraFactors], weights: list[float], params: Params) -> MergeResult:
    import torch

    rank = params.rank or sum(next(iter(ad.modules.values()))[0].shape[0] for ad in adapters)
    out, errors = {}, {}
    for module, (d_out, d_in) in module_shapes(adapters).items():
        deltas = [ad.delta(module) if module in ad.modules else torch.zeros(d_out, d_in) for ad in adapters]
        a, b, errors[module] = low_rank(ties_dense(deltas, weights, params.density), rank)
        out[module] = (a, b)
    return MergeResult(out, {"rank": rank, "density": params.density, **error_stats(errors)})
