"""``factor_mean``: average the A's and the B's separately — the "uniform" merge of MTTL and
LoraHub (PEFT ``linear`` with weights w_i² behaves the same).

ΔW' = (Σ w_i B_i)(Σ w_j A_j) = Σ w_i² B_i A_i + Σ_{i≠j} w_i w_j B_i A_j: each expert's own update is
shrunk to w_i² (1/4 for two experts) and cross terms B_i A_j appear that no expert learned. That
is not the mean of the updates — compare ``delta_mean``. Needs equal ranks.
"""

from __future__ import annotations

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.delta_mean import MergeResult
from lorareuse_plugin.reuse.lora_io import LoraFactors, module_shapes
from lorareuse_plugin.reuse.params import NoParams

Params = NoParams


def merge(adapters: list[LoraFactors], weights: list[float], params: Params) -> MergeResult:
    import torch

    ranks = {a.shape[0] for ad in adapters for a, _ in ad.modules.values()}
    if len(ranks) != 1:
        raise ConfigError(
            f"factor_mean needs experts of equal rank, got ranks {sorted(ranks)}; use delta_mean or svd instead"
        )
    (rank,) = ranks
    out = {}
    for module, (d_out, d_in) in module_shapes(adapters).items():
        a_sum, b_sum = torch.zeros(rank, d_in), torch.zeros(d_out, rank)
        for ad, w in zip(adapters, weights, strict=True):
            if module in ad.modules:
                a, b = ad.modules[module]
                a_sum += w * a
                b_sum += w * b
        out[module] = (a_sum, b_sum)
    return MergeResult(out, {"rank": rank, "exact": False, "cross_terms": True})
