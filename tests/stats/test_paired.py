import pytest

from lorareuse_plugin.stats import holm, mcnemar_exact, paired_difference, unpaired_difference


def test_mcnemar_exact_matches_a_hand_computation():
    # 1 vs 7 discordant items: P(X <= 1 | Bin(8, 1/2)) = 9/256, two-sided 18/256
    assert mcnemar_exact(1, 7) == pytest.approx(18 / 256)
    assert mcnemar_exact(7, 1) == pytest.approx(18 / 256)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(4, 4) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []


def test_paired_difference_counts_discordant_items_and_is_honest_at_zero():
    a = [1, 1, 1, 0, 0, 1, 0, 0]
    b = [1, 0, 0, 0, 0, 1, 1, 0]
    d = paired_difference(a, b)
    assert (d.a_only, d.b_only, d.value) == (2, 1, pytest.approx(1 / 8))
    assert d.low < d.value < d.high and d.method == "newcombe paired"
    same = paired_difference([0] * 100, [0] * 100)
    assert same.value == 0 and same.low < -0.02 and same.high > 0.02  # no discordant item is not proof of 0
    with pytest.raises(ValueError, match="must align"):
        paired_difference([1], [1, 0])


def test_paired_cluster_bootstrap_is_reproducible():
    a = [1] * 40 + [0] * 60
    b = [0] * 20 + [1] * 20 + [0] * 60
    clusters = [i // 10 for i in range(100)]
    one = paired_difference(a, b, clusters, resamples=500, seed=3)
    assert one == paired_difference(a, b, clusters, resamples=500, seed=3)
    assert one.method.startswith("paired cluster bootstrap (10 clusters")


def test_unpaired_difference():
    d = unpaired_difference([1] * 80 + [0] * 20, [1] * 20 + [0] * 80)
    assert d.value == pytest.approx(0.6) and 0.45 < d.low < 0.6 < d.high < 0.75
