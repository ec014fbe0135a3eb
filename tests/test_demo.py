"""The default demo's shipped libraries (``adapters/demo/built/``) are exactly what their recipes build
on the shipped base with today's code: seeded into ``--out``, ``library build`` finds every expert and
the positive controls up to date and trains nothing. Fails (fast, before any training) when a change
to the data generator, replay, recipes or base makes them stale — then rebuild them with
``lorareuse demo --train`` and copy ``runs/demo/libraries/<name>`` (manifest + adapter files) there."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lorareuse_plugin.demo import ADAPTERS, DEMO_RECIPES, SHIPPED_LIBRARIES, seed_library


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("recipe_name", DEMO_RECIPES)
def test_shipped_demo_library_is_what_its_recipe_builds(recipe_name: str, tmp_path: Path, lorareuse_cache) -> None:
    from lorareuse_plugin.base.resolve import resolve_base
    from lorareuse_plugin.data.build import build_dataset
    from lorareuse_plugin.library.build import build_library, expert_key
    from lorareuse_plugin.library.recipe import load_recipe

    recipe = load_recipe(ADAPTERS / f"{recipe_name}.yaml")
    shipped = json.loads((SHIPPED_LIBRARIES / recipe.name / "manifest.json").read_text())
    ref = resolve_base(recipe.base, progress=False)
    ds = build_dataset(recipe.data)
    for expert in recipe.experts:  # checked before build_library, which would train a stale expert (~6 min)
        key = expert_key(ref, ds.hashes[expert.split], expert, recipe.data.seed)
        assert shipped["experts"][expert.name]["key"] == key, f"shipped {recipe.name}/{expert.name} is stale"
    lib = tmp_path / recipe.name
    log: list[str] = []
    assert seed_library(recipe.name, lib, log.append)
    adapters = {k: v for k, v in _files(lib).items() if k != "manifest.json"}
    build_library(recipe, lib, progress=False, log=log.append)
    steps = [line for line in log if line.startswith(("expert ", "controls"))]
    assert steps == [f"expert {e}: up to date, skipped" for e in recipe.expert_names]  # no training, no controls
    assert {k: v for k, v in _files(lib).items() if k != "manifest.json"} == adapters
    built = json.loads((lib / "manifest.json").read_text())
    assert built["base"]["name_or_path"] == str(ref.name_or_path)  # this checkout's base, not the shipper's
    assert built["controls"] == shipped["controls"]
    assert not seed_library(recipe.name, lib, log.append)  # never over a library already there


def test_real_base_demo_recipes_parse_and_their_training_estimate_counts_optimizer_steps() -> None:
    """``demo --base smollm2``: its recipes name the real base and train the experts the ladder needs;
    the estimate printed before training counts the steps the progress bars then show (a real build
    of the F library showed 72 for hop1 and 24 for target)."""
    from lorareuse_plugin.demo import REAL_BASE_RECIPES, _recipes, training_steps

    recipes = _recipes("default", "smollm2")
    assert [r.name for r in recipes] == [n.removeprefix("demo/") for n in REAL_BASE_RECIPES["smollm2"]]
    for r in recipes:
        assert r.base == "smollm2" and r.experts and {"hop1", "hop2", "union"} <= set(r.expert_names)
    f = recipes[0]
    assert training_steps([dataclasses.replace(f, experts=(f.expert("hop1"),))]) == 72
    assert training_steps([dataclasses.replace(f, experts=(f.expert("target"),))]) == 24


def test_the_estimate_leaves_out_experts_already_built_with_this_key(tmp_path: Path) -> None:
    from lorareuse_plugin.base.resolve import BaseRef
    from lorareuse_plugin.data.build import build_dataset
    from lorareuse_plugin.demo import _recipes, built_experts, training_steps
    from lorareuse_plugin.library.build import expert_key

    recipes = _recipes("default", "smollm2")
    f = recipes[0]
    ref = BaseRef("smollm2-dir", "config-hash", "weights-hash", "LlamaForCausalLM")
    hop1 = f.expert("hop1")
    key = expert_key(ref, build_dataset(f.data).hashes["hop1"], hop1, f.data.seed)
    lib = tmp_path / f.name
    lib.mkdir()
    experts = {"hop1": {"key": key}, "hop2": {"key": "built on another base"}}
    (lib / "manifest.json").write_text(json.dumps({"experts": experts}))
    done = built_experts(recipes, tmp_path, ref)
    assert done == {(f.name, "hop1")}
    assert training_steps(recipes, done) == training_steps(recipes) - 72
