"""Ladder runs in worker processes, for a CPU whose cores a single run cannot keep busy.

On the demo's 6-layer base a run's time is mostly per-step overhead (one decoding step of a batch
of 32 costs ~7 ms, of one sequence ~3 ms): a second core adds little inside one run (1.3× on
matmul-heavy prefill, less on decoding), while two single-threaded runs side by side finish
1.43× faster than the same runs one after the other with two threads (measured: 22 runs of the
two-hop F ladder, 2 cores). Each worker is a spawned process (no fork of a threaded torch) with
``cores // workers`` torch threads, its own copy of the base and its own lm-eval task managers;
it writes the run's files exactly as a serial run does and returns only the seconds it took, so
the parent reads every result from disk (and the run cache sees no difference).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STATE: dict[str, Any] = {}  # per worker process: its base cache, task managers and open contexts


@dataclass(frozen=True)
class RunJob:
    """One ladder entry's run, as a worker needs it (every field pickles)."""

    lib: Any  # library.source.Library
    entry: Any  # report.ladder.LadderEntry
    pool: Any  # report.taskpool.TaskPool
    metadata: dict | None
    run_dir: Path
    key: str
    base_path: str
    served: str  # hf | vllm
    batch_size: int
    device: str
    limit: int | None
    apply_chat_template: bool


def default_workers(device: str) -> int:
    """Two on a CPU with two cores or more; one on a GPU (a second process would only share it)."""
    return 2 if device == "cpu" and (os.cpu_count() or 1) >= 2 else 1


def _init(threads: int) -> None:
    import torch

    from lorareuse_plugin.report.quiet import ladder_quiet

    torch.set_num_threads(threads)
    stack = contextlib.ExitStack()  # held for the worker's life: its runs are one ladder's runs
    stack.enter_context(ladder_quiet())
    _STATE.update(stack=stack, base_cache={}, task_managers={})


def run_job(job: RunJob) -> float:
    """In a worker: evaluate one entry and write its run dir; the seconds it took."""
    import json

    from lorareuse_plugin.report.leaderboard import evaluate_entry

    started = time.time()
    managers = _STATE["task_managers"]
    tm_key = json.dumps([job.pool.names, job.metadata], sort_keys=True, default=str)
    if tm_key not in managers:
        managers[tm_key] = job.pool.task_manager(job.metadata)
    evaluate_entry(job, managers[tm_key], _STATE["base_cache"])
    return time.time() - started


@contextlib.contextmanager
def ladder_workers(workers: int) -> Iterator[Executor | None]:
    """``workers`` spawned processes sharing the cores (``None`` for one: runs stay in this process)."""
    if workers <= 1:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init, initargs=(threads,)
    ) as pool:
        yield pool
