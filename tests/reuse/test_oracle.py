"""``oracle`` routes by task; a task that is not ours is refused unless a route or the opt-in default covers it."""

import pytest

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.oracle import Params, expert_for_task
from lorareuse_plugin.reuse.params import parse_params

EXPERTS = ("hop1", "hop2", "target")


def test_our_tasks_go_to_the_expert_trained_for_them():
    p = Params()
    assert expert_for_task("lorareuse_hop1_f", EXPERTS, p) == "hop1"
    assert expert_for_task("lorareuse_twohop_f_cot", EXPERTS, p) == "target"
    assert expert_for_task("lorareuse_hop2_f", ("hop1", "target"), p) is None  # its expert is not chosen


def test_a_foreign_task_is_refused_routed_by_glob_or_served_by_the_base_on_request():
    with pytest.raises(ConfigError, match=r"task 'mmlu_anatomy' is not one of ours .* routes=mmlu_anatomy:<expert>"):
        expert_for_task("mmlu_anatomy", EXPERTS, Params())
    p = parse_params("oracle", Params, {"routes": "mmlu_*:hop2+lorareuse_hop1_*:target"})
    assert expert_for_task("mmlu_anatomy", EXPERTS, p) == "hop2"
    assert expert_for_task("lorareuse_hop1_f", EXPERTS, p) == "target"  # a route overrides the catalog
    assert expert_for_task("arc_easy", EXPERTS, parse_params("oracle", Params, {"route_default": "base"})) is None


def test_foreign_adapters_are_routed_by_routes_alone_even_on_our_tasks():
    """A foreign adapter named like ours (hop1) is not guessed to be our hop1 expert: routes= or a refusal."""
    p = Params()
    with pytest.raises(ConfigError, match="has no expert of ours .* add routes=lorareuse_hop1_f:<expert>"):
        expert_for_task("lorareuse_hop1_f", EXPERTS, p, catalog=False)
    routed = Params(routes="lorareuse_*:hop2")
    assert expert_for_task("lorareuse_hop1_f", EXPERTS, routed, catalog=False) == "hop2"
    assert expert_for_task("lorareuse_hop1_f", EXPERTS, Params(route_default="base"), catalog=False) is None
