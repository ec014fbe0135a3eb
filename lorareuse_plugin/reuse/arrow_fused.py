"""Our fused Arrow forward: the same routing as PEFT's Arrow layer, without its per-call costs.

PEFT's layer restacks every expert's A and B on every call, computes every expert's full output
for every token into a ``[tokens, experts, out]`` tensor and then mixes it. Here, per adapted
linear layer, the experts' factors are concatenated once at load — ``A_cat`` [Σr, in] and
``B_cat`` [out, Σr] with each expert's scaling folded into its B — and a forward hook adds

    [s | z] = x @ [P; A_cat]ᵀ                   # routing scores and every expert's rank projection
    coeff = softmax(top-k(|s|) / T)             # [tokens, experts], 0 outside the top-k
    Δ = (z ⊙ coeff[:, owner]) @ B_catᵀ          # added in place to the layer's output (inference)

— one projection for routing and all experts' ranks at once, the routing weights applied to the
rank slices, one projection back; top-1 keeps the winner's slice by a mask (its softmax is 1).
Mathematically equal to PEFT's sum Σ_e coeff_e·s_e·B_e(A_e x) (tested to 1e-5);
only the summation order differs. Experts may differ in rank and in the modules they adapt (no
padded copies): an expert without a LoRA on a module keeps a zero prototype there, as in the
padded PEFT path, and contributes no rank rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from lorareuse_plugin.reuse.lora_io import LoraFactors


@dataclass
class FusedArrowLayer:
    """One adapted linear layer's stacked factors, prototypes and routing settings.

    ``proj`` is ``[prototypes; A_cat]``: one matmul gives the routing scores and every expert's rank
    projection at once."""

    proj: torch.Tensor  # [experts + Σr, in]
    b_cat: torch.Tensor  # [out, Σr], scaling folded in
    owner: torch.Tensor  # [Σr]: the expert of each rank row
    experts: int
    top_k: int
    temperature: float

    def _weighted(self, tok: torch.Tensor) -> torch.Tensor:
        """[t, Σr]: every expert's rank projection times its routing weight (0 outside the top-k)."""
        import torch

        both = tok @ self.proj.T
        sim, z = both[:, : self.experts].abs(), both[:, self.experts :]
        if self.top_k == 1:  # softmax over one score is 1: keep the winner's rank slice
            return z * (self.owner == sim.argmax(1, keepdim=True))
        if self.top_k >= self.experts:
            coeff = torch.softmax(sim / self.temperature, dim=1)
        else:
            top_v, idx = torch.topk(sim, self.top_k, dim=1)
            coeff = torch.zeros_like(sim).scatter_(1, idx, torch.softmax(top_v / self.temperature, dim=1))
        return z * coeff.index_select(1, self.owner)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        tok = x.reshape(-1, x.shape[-1]).to(self.proj.dtype)
        return (self._weighted(tok) @ self.b_cat.T).view(*x.shape[:-1], self.b_cat.shape[0])

    def __call__(self, module, args, output):
        import torch

        x = args[0]
        if torch.is_grad_enabled() or output.dtype != self.proj.dtype:
            return output + self.delta(x).to(output.dtype)
        flat = output.view(-1, output.shape[-1])  # inference: add in place, no second output tensor
        flat.addmm_(self._weighted(x.reshape(-1, x.shape[-1])), self.b_cat.T)
        return output


def fused_layers(
    adapters: Sequence[LoraFactors], top_k: int, temperature: float, dtype, device
) -> dict[str, FusedArrowLayer]:
    """Per module adapted by any expert: its fused layer (prototypes exact, as in reuse/arrow.py)."""
    import torch

    from lorareuse_plugin.reuse.prototypes import expert_prototype

    layers = {}
    for module in sorted({m for ad in adapters for m in ad.modules}):
        a_rows, b_cols, owner, protos = [], [], [], []
        in_features = next(ad.modules[module][0].shape[1] for ad in adapters if module in ad.modules)
        for e, ad in enumerate(adapters):
            if module not in ad.modules:
                protos.append(torch.zeros(in_features))
                continue
            a, b = ad.modules[module]
            protos.append(expert_prototype(a, b))
            if protos[-1].any():  # a LoRA of zeros adds nothing: no rank rows for it
                a_rows.append(a)
                b_cols.append(b)
                owner += [e] * a.shape[0]
        if not a_rows:  # every expert's LoRA on this module is zero: nothing to add
            continue
        layers[module] = FusedArrowLayer(
            proj=torch.cat([torch.stack(protos), torch.cat(a_rows)]).to(device=device, dtype=dtype),
            b_cat=torch.cat(b_cols, dim=1).to(device=device, dtype=dtype),
            owner=torch.tensor(owner, device=device),
            experts=len(adapters),
            top_k=top_k,
            temperature=temperature,
        )
    return layers


def attach(model, layers: dict[str, FusedArrowLayer]) -> list:
    """Hook every fused layer onto its linear module of ``model``; returns the hook handles."""
    return [model.get_submodule(name).register_forward_hook(layer) for name, layer in layers.items()]
