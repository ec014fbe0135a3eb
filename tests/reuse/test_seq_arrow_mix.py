"""seq_arrow's top-k mix: whole-percent weights that always form a valid delta_mean spec."""

import random

from lorareuse_plugin.reuse.seq_arrow import mix, mixture_rank


def test_mix_weights_are_positive_whole_percents_summing_to_one():
    rng = random.Random(0)
    for _ in range(5000):
        scores = {f"e{i}": rng.uniform(0, 3) for i in range(6)}
        experts, weights = mix(scores, rng.randint(1, 6), rng.choice([0.01, 0.3, 1.0, 5.0]))
        assert len(experts) == len(weights) >= 1 and len(set(experts)) == len(experts)
        assert all(w > 0 and abs(w * 100 - round(w * 100)) < 1e-9 for w in weights)
        assert round(sum(w * 100 for w in weights)) == 100
        assert experts[0] == max(scores, key=scores.get)


def test_mix_ranks_ties_by_name_and_drops_zero_shares():
    assert mix({"b": 1.0, "a": 1.0, "c": 1.0}, 3, 1.0) == (("a", "b", "c"), (0.34, 0.33, 0.33))
    assert mix({"a": 10.0, "b": 0.0}, 2, 0.1) == (("a",), (1.0,))  # b's share rounds to 0 %
    assert mixture_rank([4, 8, 16], 2) == 24
