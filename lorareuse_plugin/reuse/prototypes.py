"""Arrow prototypes: the top right-singular vector of each expert's ΔW per module, computed
exactly from the factors (QR + SVD of the r×r core) — PEFT's 15-step power iteration can be far
off when σ₂≈σ₁ and is random without a seed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


def top_right_singular_vector(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """v₁ of B @ A (A [r, in], B [out, r]); the sign is arbitrary (routers use |x·v|)."""
    import torch

    _, s, vh = torch.linalg.svd(b.double(), full_matrices=False)
    core = s[:, None] * (vh @ a.double())  # [r, in], same row space as B @ A
    return torch.linalg.svd(core, full_matrices=False).Vh[0].float()


def expert_prototype(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The exact prototype; zero for an expert with no LoRA on this module (padded in with zeros):
    it then scores |x·0| = 0 against every token."""
    if not bool(a.any()) or not bool(b.any()):
        return a.new_zeros(a.shape[1])
    return top_right_singular_vector(a, b)
