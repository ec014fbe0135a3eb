"""Determinism: greedy results (generations, MC choices, scores, routes) do not depend on the
batch size (HF and vLLM; log-likelihoods agree to 1e-4, float summation order), and exported
datasets are byte-identical across processes and PYTHONHASHSEEDs (split hashes: tests/data)."""

import filecmp
import os
import subprocess
import sys

import pytest

import lorareuse_plugin

from .conftest import tiny_task_metadata

TASKS = ["lorareuse_twohop_f", "lorareuse_hop1_f", "lorareuse_hop2_f", "lorareuse_twohop_f_mc"]
BATCH_SIZES = (1, 8, 32)


def _evaluate(lm):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tm = TaskManager(
        include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False, metadata=tiny_task_metadata()
    )
    return simple_evaluate(model=lm, tasks=TASKS, task_manager=tm, bootstrap_iters=0)


def _greedy(results) -> tuple[dict, dict]:
    """Per task and document: generations or the winning MC choice (must be equal), and the
    log-likelihoods (equal up to float summation order: 1e-4)."""
    exact, lls = {}, {}
    for task, samples in results["samples"].items():
        for s in samples:
            resps = s["filtered_resps"]
            if isinstance(resps[0], str):
                exact[(task, s["doc_id"])] = resps
            else:
                ll = [r[0] for r in resps]
                exact[(task, s["doc_id"])] = max(range(len(ll)), key=ll.__getitem__)
                lls[(task, s["doc_id"])] = ll
    return exact, lls


def _assert_same(runs: dict) -> None:
    first = runs[BATCH_SIZES[0]]
    for bs in BATCH_SIZES[1:]:
        (exact, lls), scores, served = runs[bs]
        assert exact == first[0][0] and scores == first[1] and served == first[2], f"batch size {bs}"
        for key, ll in lls.items():
            assert max(abs(a - b) for a, b in zip(ll, first[0][1][key], strict=True)) <= 1e-4, key
    assert len(first[0][0]) >= 4 * 3


@pytest.mark.parametrize("method,experts", [("delta_mean", "hop1+hop2"), ("seq_arrow", "hop1+hop2+target")])
def test_hf_greedy_results_do_not_depend_on_batch_size(tiny_library, method, experts):
    from lorareuse_plugin.models.hf import LorareuseHFLM

    runs = {}
    for bs in BATCH_SIZES:
        lm = LorareuseHFLM(
            library=str(tiny_library), method=method, experts=experts, dtype="float32", device="cpu", batch_size=bs
        )
        res = _evaluate(lm)
        runs[bs] = (_greedy(res), res["results"], lm.served_by())
    _assert_same(runs)


def test_vllm_greedy_results_do_not_depend_on_batch_size(tiny_library):
    pytest.importorskip("vllm")
    from lorareuse_plugin.models.vllm import LorareuseVLLM

    lm = LorareuseVLLM(
        library=str(tiny_library), method="oracle", experts="hop1+hop2+target", dtype="float32", max_model_len=256
    )
    runs = {}
    for bs in BATCH_SIZES:
        lm.batch_size = bs  # lm-eval chunks requests by this attribute: one engine, three batchings
        lm.route_log.clear()
        res = _evaluate(lm)
        runs[bs] = (_greedy(res), res["results"], lm.served_by())
    _assert_same(runs)


def test_exported_datasets_are_byte_identical_across_processes_and_hash_seeds(tmp_path):
    dirs = []
    for i, hashseed in enumerate(("0", "4242")):
        out = tmp_path / f"export{i}"
        cmd = [sys.executable, "-m", "lorareuse_plugin.cli", "data", "export", "--family", "math_ks"]
        cmd += ["--familiarity", "F", "--out", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hashseed})
        dirs.append(out)
    names = sorted(p.name for p in dirs[0].iterdir())
    assert names == sorted(p.name for p in dirs[1].iterdir()) and len(names) > 3
    match, mismatch, errors = filecmp.cmpfiles(dirs[0], dirs[1], names, shallow=False)
    assert mismatch == [] and errors == [] and sorted(match) == names
