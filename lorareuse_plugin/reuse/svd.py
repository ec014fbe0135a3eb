"""``svd``: the best rank-r approximation of the exact delta mean, without forming ΔW densely.

From the concatenated factors B' [out, R] and A' [R, in]: QR both, SVD the small R×R core, keep
the top r. Reports the relative Frobenius truncation error per module (0 when r ≥ R).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.delta_mean import MergeResult, concat
from lorareuse_plugin.reuse.dense import error_stats
from lorareuse_plugin.reuse.lora_io import LoraFactors


@dataclass(frozen=True)
class Params:
    rank: int | None = field(default=None, metadata={"help": "target rank (default: the largest expert rank)"})

    def validate(self, method: str) -> None:
        if self.rank is not None and self.rank < 1:
            raise ConfigError(f"{method}: rank={self.rank} is invalid: use a positive integer")


def check_spec(spec) -> None:
    """A rank above the experts' total rank only pads the adapter with zero factors: refuse it."""
    if spec.params.rank is None:
        return
    total = sum(spec.library.adapter(e).rank for e in spec.experts)  # from the weights
    if spec.params.rank > total:
        raise ConfigError(
            f"{spec.method.name}: rank={spec.params.rank} is invalid for {'+'.join(spec.experts)} "
            f"(total rank {total}): use 1..{total}"
        )


def factor_svd(a: object, b: object, rank: int):
    """(A_r, B_r, rel_err) of B @ A via QR + SVD of the R×R core."""
    import torch

    qb, rb = torch.linalg.qr(b.double())
    qa, ra = torch.linalg.qr(a.double().T)
    u, s, vh = torch.linalg.svd(rb @ ra.T)
    k = min(rank, s.shape[0])
    total = float((s**2).sum())
    err = float((s[k:] ** 2).sum() / total) ** 0.5 if total > 0 else 0.0
    b_r = (qb @ u[:, :k] * s[:k]).float()
    a_r = (vh[:k] @ qa.T).float()
    if k < rank:
        a_r = torch.cat([a_r, a_r.new_zeros(rank - k, a_r.shape[1])])
        b_r = torch.cat([b_r, b_r.new_zeros(b_r.shape[0], rank - k)], dim=1)
    return a_r, b_r, err


def merge(adapters: list[LoraFactors], weights: list[float], params: Params) -> MergeResult:
    rank = params.rank or max(a.shape[0] for ad in adapters for a, _ in ad.modules.values())
    out, errors = {}, {}
    for module, (a, b) in concat(adapters, weights).items():
        a_r, b_r, errors[module] = factor_svd(a, b, rank)
        out[module] = (a_r, b_r)
    return MergeResult(out, {"rank": rank, "exact": max(errors.values()) < 1e-6, **error_stats(errors)})
