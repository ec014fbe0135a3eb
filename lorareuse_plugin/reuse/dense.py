"""Dense-delta helpers shared by the methods that operate on ΔW itself (svd, ties, dare)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


def low_rank(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Best rank-``rank`` factors (A [rank, in], B [out, rank]) of ``delta`` and the relative
    Frobenius truncation error; zero-padded when ``delta`` has lower rank than asked."""
    import torch

    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    k = min(rank, s.shape[0])
    total = float((s**2).sum())
    err = float((s[k:] ** 2).sum() / total) ** 0.5 if total > 0 else 0.0
    b = (u[:, :k] * s[:k]).float()
    a = vh[:k].float()
    if k < rank:
        a = torch.cat([a, a.new_zeros(rank - k, a.shape[1])])
        b = torch.cat([b, b.new_zeros(b.shape[0], rank - k)], dim=1)
    return a, b, err


def error_stats(errors: dict[str, float]) -> dict[str, float]:
    values = list(errors.values()) or [0.0]
    return {"max_rel_error": max(values), "mean_rel_error": sum(values) / len(values)}
