"""``delta_mean``: the exact weighted mean of the experts' ΔW, by rank concatenation (PEFT ``cat``).

A' = [A_1; …; A_n], B' = [w_1 B_1, …, w_n B_n]  ⇒  B'A' = Σ w_i B_i A_i exactly, at rank Σ r_i.
Modules an expert lacks contribute zero blocks, so every module has the same rank.
"""

from __future__ import annotations

from dataclasses import dataclass

from lorareuse_plugin.reuse.lora_io import LoraFactors, module_shapes
from lorareuse_plugin.reuse.params import NoParams

Params = NoParams


@dataclass
class MergeResult:
    factors: dict
    stats: dict


def concat(adapters: list[LoraFactors], weights: list[float]) -> dict:
    import torch

    shapes = module_shapes(adapters)
    out = {}
    for module, (d_out, d_in) in shapes.items():
        a_blocks, b_blocks = [], []
        for ad, w in zip(adapters, weights, strict=True):
            if module in ad.modules:
                a, b = ad.modules[module]
                a_blocks.append(a)
                b_blocks.append(w * b)
            else:  # zero block of that expert's rank keeps ranks uniform and the sum exact
                r = next(iter(ad.modules.values()))[0].shape[0]
                a_blocks.append(torch.zeros(r, d_in))
                b_blocks.append(torch.zeros(d_out, r))
        out[module] = (torch.cat(a_blocks), torch.cat(b_blocks, dim=1))
    return out


def merge(adapters: list[LoraFactors], weights: list[float], params: Params) -> MergeResult:
    factors = concat(adapters, weights)
    rank = next(iter(factors.values()))[0].shape[0]
    return MergeResult(factors, {"rank": rank, "exact": True})
