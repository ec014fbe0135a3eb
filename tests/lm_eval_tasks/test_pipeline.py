"""Every task end-to-end through lm-eval on a real (tiny, random) HF Llama: a pipeline test.

A random model scores near zero; what is checked is that each leaf task ran its requests through
the model, extracted and scored them, and landed in the results with the documented metric.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lorareuse_plugin
from lorareuse_plugin.data.catalog import FORM_METRIC, task_specs

LIMIT = 2


@pytest.fixture(scope="module")
def results(tiny_llama):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False)
    return simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_llama), "dtype": "float32"},
        tasks=["lorareuse"],
        task_manager=tm,
        limit=LIMIT,
        batch_size=8,
        device="cpu",
        bootstrap_iters=0,
        log_samples=True,
    )


def test_every_leaf_task_ran_and_was_scored(results):
    for spec in task_specs():
        metric, filt = FORM_METRIC[spec.form]
        row = results["results"][spec.name]
        assert 0.0 <= row[f"{metric},{filt}"] <= 1.0, spec.name
        samples = results["samples"][spec.name]
        assert len({s["doc_id"] for s in samples}) == LIMIT, spec.name
        for s in samples:
            if spec.form in ("mc", "ctx_mc"):
                assert len(s["resps"]) == len(s["doc"]["choices"])
            else:
                assert isinstance(s["resps"][0][0], str)  # the model really generated text
        assert results["versions"][spec.name] == 1.0


def test_groups_aggregate(results):
    assert "exact_match,extract" in results["results"]["lorareuse_probes"]
    assert "acc,none" in results["results"]["lorareuse_twohop_mc"]
    cfg = results["configs"]["lorareuse_twohop_f"]
    assert cfg["metadata"]["lorareuse_seed"] == 0


def _env() -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")


def test_lorareuse_eval_cli_runs_our_tasks(tmp_path):
    exe = Path(sys.executable).with_name("lorareuse-eval")
    proc = subprocess.run(
        [
            str(exe),
            "run",
            "--model",
            "dummy",
            "--tasks",
            "lorareuse_twohop_f,lorareuse_math_ss_mc",
            "--limit",
            "3",
            "--output_path",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lorareuse_twohop_f" in proc.stdout and "lorareuse_math_ss_mc" in proc.stdout
    (result_file,) = list((tmp_path / "out").rglob("results_*.json"))
    assert "lorareuse_twohop_f" in json.loads(result_file.read_text())["results"]


def test_stock_lm_eval_with_include_path(tmp_path):
    exe = Path(sys.executable).with_name("lm_eval")
    proc = subprocess.run(
        [
            str(exe),
            "--include_path",
            str(lorareuse_plugin.TASKS_DIR),
            "--tasks",
            "lorareuse_twohop_f",
            "--model",
            "dummy",
            "--limit",
            "5",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lorareuse_twohop_f" in proc.stdout and "exact_match" in proc.stdout
