import pytest

from lorareuse_plugin.stats import cell_interval, t_interval, wilson
from lorareuse_plugin.stats.intervals import cluster_bootstrap


def test_wilson_matches_textbook_values():
    lo, hi = wilson(0, 12)
    assert lo == 0.0 and hi == pytest.approx(0.2425, abs=1e-4)
    # Newcombe (1998), example 81/263: 0.2553 to 0.3662
    lo, hi = wilson(81, 263)
    assert (lo, hi) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))


def test_cell_interval_is_wilson_for_independent_items_and_never_degenerate():
    c = cell_interval([0] * 12)
    assert c.method == "wilson" and c.low == 0.0 and c.high == pytest.approx(0.2425, abs=1e-4)
    c = cell_interval([1] * 100, [f"bridge{i % 5}" for i in range(100)])
    assert c.method.startswith("cluster bootstrap (5 clusters") and c.high == 1.0
    assert c.low < 0.6  # five independent units, not a hundred: at 1 the interval still has width


def test_cluster_bootstrap_is_seeded_reproducible_and_wider_than_item_wilson():
    outcomes = [1] * 30 + [0] * 30
    clusters = [f"a{i // 10}" for i in range(30)] + [f"b{i // 10}" for i in range(30)]  # 6 clusters of 10
    one = cluster_bootstrap(outcomes, clusters, resamples=1000, seed=7)
    assert one == cluster_bootstrap(outcomes, clusters, resamples=1000, seed=7)
    mixed = [int(i % 3 == 0 or i % 7 == 0) for i in range(100)]
    groups = [i % 23 for i in range(100)]
    assert cluster_bootstrap(mixed, groups, seed=1) != cluster_bootstrap(mixed, groups, seed=2)
    w_lo, w_hi = wilson(30, 60)
    assert one[1] - one[0] > w_hi - w_lo  # clustered items carry less information
    with pytest.raises(ValueError, match="resamples must be >= 100"):
        cluster_bootstrap(outcomes, clusters, resamples=99)


def test_t_interval_over_seeds():
    t = t_interval([0.2, 0.4, 0.3])
    assert t.value == pytest.approx(0.3)
    assert t.high - t.value == pytest.approx(4.303 * 0.1 / 3**0.5, rel=1e-3)
