"""Shared by the benchmarks: the demo's base and libraries (built on demand in the bench cache),
side-by-side timing, and one JSON line per measure.

Benchmarks run in their own cache (``runs/bench/cache`` unless LORAREUSE_CACHE is set), so the
first ``make bench`` on a machine times a cold demo build (P5) and later ones reuse it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "runs" / "bench"
os.environ.setdefault("LORAREUSE_CACHE", str(BENCH_DIR / "cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
DEMO_OUT = BENCH_DIR / "demo"
REPS = int(os.environ.get("LORAREUSE_BENCH_REPS", "5"))
WORLDS = 3  # world seeds whose records make up the log-likelihood workload (default sizes)


def emit(bench: str, measure: str, value: float, unit: str, **extra) -> dict:
    """One JSON line per measure (what bench/run.py collects into RESULTS.md)."""
    row = {"bench": bench, "measure": measure, "value": round(value, 4), "unit": unit, **extra}
    print("BENCH " + json.dumps(row), flush=True)
    return row


def machine() -> str:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:  # pragma: no cover - torch missing
        gpu = "unknown GPU"
    cpu = platform.processor() or platform.machine()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or cpu}, {len(os.sched_getaffinity(0))} cores usable, {gpu}"


def demo_library(name: str = "demo_twohop_f") -> Path:
    """A demo library (and its base), built by ``lorareuse demo`` if the bench cache lacks it."""
    lib = DEMO_OUT / "libraries" / name
    if not (lib / "manifest.json").is_file():
        from lorareuse_plugin.demo import run_demo

        run_demo("default", DEMO_OUT, log=lambda m: None)
    return lib


def workload(lib, experts: tuple[str, ...] = ("hop1", "hop2", "target"), per_split: int = 400) -> list:
    """Distinct loglikelihood requests (prompt → completion) from every split of the library's
    family/familiarity at default sizes, world seeds 0..WORLDS-1 (about a thousand requests).

    Log-likelihood work is the same for every model (same tokens, no early stop), so timings
    compare what serving costs, not how long each model's answers happen to be. Requests are
    spread round-robin over the experts' own probe tasks, so ``oracle`` routes them to all experts.
    """
    from lm_eval.api.instance import Instance

    from lorareuse_plugin.data.build import build_dataset, make_spec
    from lorareuse_plugin.data.catalog import task_specs
    from lorareuse_plugin.reuse.oracle import Params, expert_for_task

    data = lib.manifest["data"]
    worlds = [build_dataset(make_spec(data["family"], data["familiarity"], seed)) for seed in range(WORLDS)]
    own = {}  # each expert's own probe task, as the oracle router sees it
    for t in task_specs():
        if t.family == data["family"] and t.familiarity == data["familiarity"] and t.split.startswith("probe_"):
            expert = expert_for_task(t.name, experts, Params())
            if expert and t.form == "gen":
                own[expert] = t.name
    tasks = [own[e] for e in experts if e in own]
    pairs = {}
    for split in (split for ds in worlds for split in ds.splits.values()):
        for rec in split[:per_split]:
            prompt, completion = rec.get("prompt"), rec.get("completion") or (" " + str(rec.get("answer", "")))
            if not prompt and rec.get("text", "").count(" "):  # a statement: score its last word
                prompt, _, last = rec["text"].rpartition(" ")
                completion = " " + last
            if prompt and completion.strip():
                pairs.setdefault((prompt, completion), None)
    return [
        Instance("loglikelihood", {}, pair, idx=0, metadata=(tasks[i % len(tasks)], i, 1))
        for i, pair in enumerate(pairs)
    ]


def side_by_side(models: dict[str, Callable[[], object]], requests: list) -> dict[str, dict]:
    """Load each model once, then time REPS rounds of ``loglikelihood(requests)`` interleaved model by
    model (drift on a shared machine hits every model alike); best round per model."""
    loaded, load_s = {}, {}
    for name, make in models.items():
        t = time.perf_counter()
        loaded[name] = make()
        load_s[name] = time.perf_counter() - t
    best: dict[str, float] = {}
    for _ in range(REPS):
        for name, lm in loaded.items():
            start = time.perf_counter()
            lm.loglikelihood(requests, disable_tqdm=True)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    n = len(requests)
    return {k: {"eval_s": best[k], "load_s": load_s[k], "requests": n, "req_per_s": n / best[k]} for k in loaded}


def unrouted_group_type() -> type:
    """The fused Arrow group with the routing cut out: every expert's rank projection added, no
    scores, no top-k — the LoRA arithmetic any per-token mixture of these experts pays (P3's floor)."""
    import torch

    from lorareuse_plugin.reuse.arrow_fused import FusedArrowGroup

    class Unrouted(FusedArrowGroup):
        def weighted(self, tok):
            return self.ranks(torch.mm(tok, self.proj_t))

    return Unrouted
