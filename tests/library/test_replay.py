import re

import pytest

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.library.recipe import ExpertRecipe, parse_recipe
from lorareuse_plugin.library.replay import replay_count, replay_records
from lorareuse_plugin.world import real_facts
from tests.base.test_base import _fictional_entities


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("family", ["twohop", "math_ks"])
def test_replay_holds_no_test_world_word_and_no_real_fact(seed, family):
    """Replay teaches procedures, never a fact: no word of any test-world entity of this seed,
    no real country or capital."""
    text = "\n".join(r["text"] for r in replay_records(400, seed, family))
    words = set(re.findall(r"[a-z]+", text.lower()))
    leaked = sorted(e for e in _fictional_entities(seed) if set(re.findall(r"[a-z]+", e.lower())) & words)
    assert leaked == []
    real = real_facts()
    assert not [c.name for c in real.countries if f" {c.name}." in text or f"of {c.name} " in text]
    assert not [c.capital for c in real.countries if f" {c.capital}." in text]


def test_replay_is_half_copying_half_the_family_procedure_and_a_stable_prefix():
    twohop = replay_records(40, 0, "twohop")
    assert replay_records(10, 0, "twohop") == twohop[:10]
    assert [r["kind"] for r in twohop[:4]] == ["qa", "cot", "qa", "cot"]
    assert all(r["prompt"].startswith("Q: Repeat the name ") for r in twohop[::2])
    assert all("was born in" in r["prompt"] and "So the answer is" in r["completion"] for r in twohop[1::2])
    math = replay_records(40, 0, "math_ks")
    assert all(re.search(r"\d+ \* \d+ = \d+", r["completion"]) for r in math[1::2])
    # the answer a chain ends with is the one its question asks for: names come from the prompt
    for r in twohop[1::2]:
        person = re.search(r"where (.+?) was born|Q: (.+?) was born in a country", r["prompt"])
        assert (person.group(1) or person.group(2)) in r["completion"]


def test_replay_share_is_validated_counted_and_keyed_only_when_used():
    assert replay_count(0.5, 301) == 150 and replay_count(0.0, 300) == 0
    assert "replay" not in ExpertRecipe("hop1", "hop1").hparams()
    assert ExpertRecipe("hop1", "hop1", replay=0.5).hparams()["replay"] == 0.5
    raw = {"data": {"family": "twohop", "familiarity": "F", "n_test": 4, "n_target": 3}, "experts": {"hop1": {}}}
    for bad in (-0.5, 5, "half", True):
        with pytest.raises(ConfigError, match=r"replay=.* is invalid: it must be a number from 0 to 4"):
            parse_recipe({**raw, "defaults": {"replay": bad}})
    assert parse_recipe({**raw, "defaults": {"replay": 1}}).experts[0].replay == 1.0


def test_a_library_build_mixes_replay_into_the_experts_that_ask_for_it(tiny_library):
    from lorareuse_plugin.library.manifest import load_library

    experts = load_library(tiny_library).manifest["experts"]
    assert experts["union"]["replay"] == 0.5
    assert experts["union"]["replay_records"] == replay_count(0.5, experts["union"]["records"]) > 0
    assert experts["hop1"]["replay_records"] == 0 and "replay" not in experts["hop1"]


def test_the_expert_key_follows_the_replay_generator_only_for_experts_that_replay(monkeypatch):
    """A change to what replay writes must retrain the experts that learned from it, and no other."""
    from lorareuse_plugin.base.resolve import BaseRef
    from lorareuse_plugin.library import build

    ref = BaseRef("base", "c" * 64, "w" * 64, "LlamaForCausalLM")
    plain, replaying = ExpertRecipe("hop1", "hop1"), ExpertRecipe("hop1", "hop1", replay=0.5)
    before = [build.expert_key(ref, "d" * 64, e, 0) for e in (plain, replaying)]
    monkeypatch.setattr(build, "REPLAY_VERSION", build.REPLAY_VERSION + 1)
    after = [build.expert_key(ref, "d" * 64, e, 0) for e in (plain, replaying)]
    assert after[0] == before[0] and after[1] != before[1]
