"""P2 — N experts routed in one run vs N separate stock lm-eval runs.

Wall time (model loads included, as a user sees it) of one ``lorareuse-eval`` run with
``method=oracle`` over the N experts' probe tasks vs N stock ``lm_eval run --model hf
--model_args peft=<expert>`` runs, one per task; and log-likelihood throughput of the routed model
vs the base model over the same distinct requests, spread over the three experts (goal ≥ 0.9).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import common

BIN = Path(sys.executable).parent


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"P2: {' '.join(cmd[:3])} failed: {out.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def main() -> list[dict]:
    from lm_eval.models.huggingface import HFLM

    import lorareuse_plugin
    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.report.leaderboard import library_tasks, task_metadata
    from lorareuse_plugin.reuse.oracle import expert_for_task
    from lorareuse_plugin.reuse.spec import parse_spec

    lib = load_library(common.demo_library())
    base = lib.manifest["base"]["name_or_path"]
    experts = ("hop1", "hop2", "target")
    params = parse_spec(lib, "oracle", "+".join(experts)).params
    tasks = {}
    for t in library_tasks(lib.manifest):
        e = expert_for_task(t, experts, params)
        if e and e not in tasks.values() and not t.endswith(("_cot", "_mc")):
            tasks[t] = e
    meta = json.dumps(task_metadata(lib.manifest))
    common_args = ["--device", "cpu", "--batch_size", "32", "--metadata", meta]
    routed = [str(BIN / "lorareuse-eval"), "run", "--model", "lorareuse-hf", "--tasks", ",".join(tasks)]
    routed += ["--model_args", f"library={lib.root},method=oracle,experts={'+'.join(experts)},dtype=float32"]
    one_run = _wall(routed + common_args)
    separate = 0.0
    for task, expert in tasks.items():
        cmd = [str(BIN / "lm_eval"), "run", "--model", "hf", "--tasks", task, "--include_path"]
        cmd += [str(lorareuse_plugin.TASKS_DIR), "--model_args"]
        cmd += [f"pretrained={base},peft={lib.expert_dir(expert)},dtype=float32"]
        separate += _wall(cmd + common_args)
    opts = {"dtype": "float32", "device": "cpu", "batch_size": 32}
    r = common.side_by_side(
        {
            "base": lambda: HFLM(pretrained=base, **opts),
            "oracle-routed": lambda: LorareuseHFLM(
                library=str(lib.root), method="oracle", experts="+".join(experts), **opts
            ),
        },
        common.workload(lib, experts),
    )
    n = len(tasks)
    return [
        common.emit("P2", f"one routed lorareuse-eval run over {n} experts (wall)", one_run, "s"),
        common.emit("P2", f"{n} separate stock lm_eval hf,peft= runs (wall)", separate, "s"),
        common.emit("P2", "separate / one-run wall time", separate / one_run, "ratio (speed-up)"),
        common.emit(
            "P2",
            "routed / base throughput",
            r["oracle-routed"]["req_per_s"] / r["base"]["req_per_s"],
            "ratio",
            goal=">= 0.9",
        ),
    ]


if __name__ == "__main__":
    main()
