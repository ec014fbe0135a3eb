"""random_route: the floor a router must beat — reproducible by seed, uniform, batching-free."""

import math

import pytest

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.random_route import Params, RandomRouter
from lorareuse_plugin.reuse.router import RouteItem

EXPERTS = ("hop1", "hop2", "target")


def _items(n: int, task: str = "lorareuse_twohop_f") -> list[RouteItem]:
    return [RouteItem(task, i, f"Q: question {i}\nA:") for i in range(n)]


def test_routes_are_a_function_of_seed_task_and_document_only():
    items = _items(300)
    a = RandomRouter(EXPERTS, 0).routes(items)
    assert a == RandomRouter(EXPERTS, 0).routes(items)  # reproducible
    assert a[::-1] == RandomRouter(EXPERTS, 0).routes(items[::-1])  # order/batching does not matter
    assert a[:7] == RandomRouter(EXPERTS, 0).routes(items[:7])
    assert a != RandomRouter(EXPERTS, 1).routes(items)  # the seed matters
    assert a != RandomRouter(EXPERTS, 0).routes(_items(300, "lorareuse_hop1_f"))  # so does the task
    assert all(len(r.experts) == 1 and r.weights == (1.0,) and r.label in EXPERTS for r in a)


def test_the_route_distribution_is_uniform_within_a_binomial_bound():
    n = 6000
    routes = RandomRouter(EXPERTS, 7).routes(_items(n))
    p = 1 / len(EXPERTS)
    sd = math.sqrt(n * p * (1 - p))
    for e in EXPERTS:
        count = sum(r.experts == (e,) for r in routes)
        assert abs(count - n * p) < 4 * sd, (e, count)  # 4 sigma: fails by chance ~1 in 15,000


def test_a_negative_seed_is_refused():
    with pytest.raises(ConfigError, match="seed=-1 is invalid"):
        Params(seed=-1).validate("random_route")
