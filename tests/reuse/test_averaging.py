"""Averaging semantics on random factors: exact where claimed, visibly not where not."""

import pytest
import torch

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse import dare, delta_mean, factor_mean, svd, task_arithmetic, ties
from lorareuse_plugin.reuse.lora_io import LoraFactors


def _adapter(seed: int, rank: int = 4, modules=("m.q_proj", "m.v_proj"), shape=(12, 10)) -> LoraFactors:
    g = torch.Generator().manual_seed(seed)
    return LoraFactors(
        {m: (torch.randn(rank, shape[1], generator=g), torch.randn(shape[0], rank, generator=g)) for m in modules}
    )


def _dense(factors: dict, module: str) -> torch.Tensor:
    a, b = factors[module]
    return b @ a


def _rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).norm() / y.norm())


def test_delta_mean_is_the_exact_mean_of_the_updates():
    ads = [_adapter(1), _adapter(2), _adapter(3, rank=2)]
    w = [1 / 3] * 3
    out = delta_mean.merge(ads, w, delta_mean.Params())
    for m in ads[0].modules:
        mean = sum(ad.delta(m) for ad in ads) / 3
        assert _rel(_dense(out.factors, m), mean) < 1e-6
    assert out.stats["rank"] == 10


def test_factor_mean_is_not_the_mean_but_mean_b_times_mean_a():
    ads = [_adapter(1), _adapter(2)]
    out = factor_mean.merge(ads, [0.5, 0.5], factor_mean.Params())
    for m in ads[0].modules:
        mean = (ads[0].delta(m) + ads[1].delta(m)) / 2
        assert _rel(_dense(out.factors, m), mean) > 0.1  # cross terms and 1/N² shrinkage
        a_bar = (ads[0].modules[m][0] + ads[1].modules[m][0]) / 2
        b_bar = (ads[0].modules[m][1] + ads[1].modules[m][1]) / 2
        assert _rel(_dense(out.factors, m), b_bar @ a_bar) < 1e-6


def test_factor_mean_refuses_unequal_ranks():
    with pytest.raises(ConfigError, match="equal rank"):
        factor_mean.merge([_adapter(1, rank=4), _adapter(2, rank=2)], [0.5, 0.5], factor_mean.Params())


def test_delta_mean_handles_experts_with_different_targets_exactly():
    a, b = _adapter(1, modules=("m.q_proj",)), _adapter(2, modules=("m.q_proj", "m.v_proj"))
    out = delta_mean.merge([a, b], [0.5, 0.5], delta_mean.Params())
    assert _rel(_dense(out.factors, "m.v_proj"), b.delta("m.v_proj") / 2) < 1e-6
    assert _rel(_dense(out.factors, "m.q_proj"), (a.delta("m.q_proj") + b.delta("m.q_proj")) / 2) < 1e-6


def test_svd_at_full_rank_equals_delta_mean_and_truncates_optimally():
    ads = [_adapter(1), _adapter(2)]
    exact = delta_mean.merge(ads, [0.5, 0.5], delta_mean.Params()).factors
    full = svd.merge(ads, [0.5, 0.5], svd.Params(rank=8))
    assert full.stats["max_rel_error"] < 1e-6
    low = svd.merge(ads, [0.5, 0.5], svd.Params(rank=3))
    for m in ads[0].modules:
        target = _dense(exact, m)
        assert _rel(_dense(full.factors, m), target) < 1e-5
        u, s, vh = torch.linalg.svd(target.double())
        best = (u[:, :3] * s[:3]) @ vh[:3]  # Eckart-Young
        assert _rel(_dense(low.factors, m).double(), best) < 1e-5
        err = float((s[3:] ** 2).sum().sqrt() / (s**2).sum().sqrt())
        assert _rel(_dense(low.factors, m).double(), target.double()) == pytest.approx(err, rel=1e-4)
    assert low.stats["max_rel_error"] > 0.01


def _ties_reference(deltas, weights, density):
    """Loop-by-loop TIES: trim per task, elect sign by weighted mass, weighted mean of agreeing."""
    import math

    n = deltas[0].numel()
    k = math.ceil(density * n)
    flat = [d.flatten().tolist() for d in deltas]
    trimmed = []
    for f in flat:
        order = sorted(range(n), key=lambda i: -abs(f[i]))[:k]
        keep = set(order)
        trimmed.append([v if i in keep else 0.0 for i, v in enumerate(f)])
    out = []
    for i in range(n):
        mass = sum(w * t[i] for w, t in zip(weights, trimmed, strict=True))
        sign = (mass > 0) - (mass < 0)
        num = den = 0.0
        for w, t in zip(weights, trimmed, strict=True):
            if t[i] != 0 and ((t[i] > 0) - (t[i] < 0)) == sign:
                num += w * t[i]
                den += w
        out.append(num / den if den else 0.0)
    return torch.tensor(out, dtype=torch.float64).view_as(deltas[0])


@pytest.mark.parametrize("density", [0.3, 0.5, 1.0])
def test_ties_matches_a_reference_computation(density):
    g = torch.Generator().manual_seed(0)
    deltas = [torch.randn(5, 6, generator=g, dtype=torch.float64) for _ in range(3)]
    weights = [0.5, 0.3, 0.2]
    ours = ties.ties_dense(deltas, weights, density)
    assert torch.allclose(ours, _ties_reference(deltas, weights, density), atol=1e-12)


def test_dare_matches_a_reference_computation_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    deltas = [torch.randn(5, 6, generator=g, dtype=torch.float64) for _ in range(2)]
    weights = [0.5, 0.5]
    drop = 0.4
    ours = dare.dare_dense(deltas, weights, drop, torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    ref = torch.zeros(5, 6, dtype=torch.float64)
    for d, w in zip(deltas, weights, strict=True):
        u = torch.rand(d.shape, generator=gen)
        for i in range(5):
            for j in range(6):
                if u[i, j] >= drop:
                    ref[i, j] += w * d[i, j] / (1 - drop)
    assert torch.allclose(ours, ref, atol=1e-12)
    again = dare.dare_dense(deltas, weights, drop, torch.Generator().manual_seed(7))
    assert torch.equal(ours, again)
    assert torch.allclose(dare.dare_dense(deltas, weights, 0.0, torch.Generator()), sum(deltas) / 2)


def test_merge_params_are_validated():
    from lorareuse_plugin.reuse.params import parse_params

    with pytest.raises(ConfigError, match="density=1.5 is invalid"):
        parse_params("ties", ties.Params, {"density": "1.5"})
    with pytest.raises(ConfigError, match="unknown parameter"):
        parse_params("dare", dare.Params, {"dorp": "0.1"})
    with pytest.raises(ConfigError, match="is not a valid int"):
        parse_params("svd", svd.Params, {"rank": "eight"})
    assert parse_params("svd", svd.Params, {"rank": "8"}).rank == 8


def test_task_arithmetic_is_the_scaled_sum_and_at_lambda_half_of_two_the_delta_mean():
    from lorareuse_plugin.reuse.params import parse_params

    ads = [_adapter(1), _adapter(2, rank=2)]
    half = task_arithmetic.merge(
        ads, [0.5, 0.5], parse_params("task_arithmetic", task_arithmetic.Params, {"lambda": "0.5"})
    )
    mean = delta_mean.merge(ads, [0.5, 0.5], delta_mean.Params())
    total = task_arithmetic.merge(ads, [0.5, 0.5], task_arithmetic.Params())  # default lambda=1: the sum
    for m in ads[0].modules:
        assert _rel(_dense(half.factors, m), _dense(mean.factors, m)) < 1e-6
        assert _rel(_dense(total.factors, m), ads[0].delta(m) + ads[1].delta(m)) < 1e-6
    assert total.stats == {"rank": 6, "exact": True, "lambda": 1.0}
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) lam; allowed: lambda"):
        parse_params("task_arithmetic", task_arithmetic.Params, {"lam": "1"})
    with pytest.raises(ConfigError, match="lambda=0 zeroes every update"):
        parse_params("task_arithmetic", task_arithmetic.Params, {"lambda": "0"})
