"""Bring your own adapters and tasks, end to end through ``lorareuse-eval``: two LoRAs trained with
plain PEFT (different ranks and target modules), every reuse method, on a task of ours and on two
local YAML tasks written the way lm-eval's own tasks are (``generate_until`` and ``multiple_choice``
over local JSON ``data_files``); ``delta_mean`` equals stock ``lm_eval --model hf`` with ``peft=``
pointing at the dir ``lorareuse merge --adapters`` wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lorareuse_plugin import TASKS_DIR

from ..library.test_foreign import adapters_arg, foreign_loras  # noqa: F401  (session fixture)

GEN_YAML = """task: byo_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

MC_YAML = """task: byo_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""

QUESTIONS = [
    ("Where was Mira Volk born?", "Zelandia", ["Zelandia", "Orvik", "Parem"]),
    ("What is the capital of Zelandia?", "Orvik", ["Parem", "Orvik", "Zelandia"]),
    ("Where was Tomas Ure born?", "Parem", ["Orvik", "Zelandia", "Parem"]),
    ("What is the capital of Parem?", "Lisk", ["Lisk", "Orvik", "Mira"]),
]
OUR_TASK = "lorareuse_hop1_f"
METADATA = json.dumps({"lorareuse_n_test": 4, "lorareuse_n_target": 3})


@pytest.fixture(scope="module")
def local_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("byo_tasks")
    gen = [{"question": q, "answer": a} for q, a, _ in QUESTIONS]
    mc = [{"question": q, "choices": c, "label": c.index(a)} for q, a, c in QUESTIONS]
    (root / "gen.json").write_text(json.dumps(gen))
    (root / "mc.json").write_text(json.dumps(mc))
    (root / "byo_gen.yaml").write_text(GEN_YAML.format(data=root / "gen.json"))
    (root / "byo_mc.yaml").write_text(MC_YAML.format(data=root / "mc.json"))
    return root


def _run(exe: str, model: str, model_args: str, include: str, out: Path) -> dict:
    """One real ``lorareuse-eval``/``lm_eval`` run over our task and both local tasks; its results JSON."""
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name(exe)),
            "run",
            "--model",
            model,
            "--model_args",
            model_args,
            "--tasks",
            f"{OUR_TASK},byo_gen,byo_mc",
            "--include_path",
            include,
            "--device",
            "cpu",
            "--batch_size",
            "4",
            "--limit",
            "4",
            "--metadata",
            METADATA,
            "--output_path",
            str(out),
            "--log_samples",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1"),
        cwd=out.parent,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (results,) = sorted(out.rglob("results_*.json"))
    return json.loads(results.read_text())


def _samples(out: Path) -> dict:
    """task -> [(doc_id, filtered response)] from the ``--log_samples`` files."""
    got = {}
    for f in sorted(out.rglob("samples_*.jsonl")):
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        got[f.name.split("samples_")[1].rsplit("_", 1)[0]] = sorted((r["doc_id"], r["filtered_resps"]) for r in rows)
    return got


def _stock_include(local_tasks: Path, out: Path) -> Path:
    """Stock ``lm_eval run`` takes one --include_path: our task folder and the local tasks, copied into one."""
    shutil.copytree(TASKS_DIR, out / "lorareuse", ignore=shutil.ignore_patterns("__pycache__"))
    for f in local_tasks.glob("*.yaml"):
        shutil.copy2(f, out / f.name)
    return out


def _scores(results: dict) -> dict:
    return {
        t: {k: v for k, v in r.items() if "stderr" not in k and k != "alias"}
        for t, r in sorted(results["results"].items())
    }


@pytest.mark.parametrize(
    "spec",
    ["delta_mean", "ties", "seq_arrow", "arrow", "oracle,routes=byo_gen:alpha+byo_mc:beta+lorareuse_*:beta"],
)
def test_every_method_runs_on_foreign_adapters_and_local_tasks(
    spec: str,
    foreign_loras: Path,  # noqa: F811
    local_tasks: Path,
    test_base: Path,
    tmp_path: Path,
) -> None:
    adapters = adapters_arg(foreign_loras)
    model_args = f"pretrained={test_base},adapters={adapters},method={spec},dtype=float32"
    results = _run("lorareuse-eval", "lorareuse-hf", model_args, str(local_tasks), tmp_path / "out")
    scores = _scores(results)
    assert set(scores) == {OUR_TASK, "byo_gen", "byo_mc"}
    assert all(v for v in scores.values())
    info = results["config"]["lorareuse"]  # get_model_info() lands in the results' config
    assert info["spec"]["library_kind"] == "adapters"
    assert set(info["adapters"]) == {"alpha", "beta"}
    if spec.startswith("oracle"):
        assert info["served_by"] == {OUR_TASK: {"beta": 4}, "byo_gen": {"alpha": 4}, "byo_mc": {"beta": 4}}


def test_delta_mean_equals_stock_lm_eval_on_the_merged_dir(
    foreign_loras: Path,  # noqa: F811
    local_tasks: Path,
    test_base: Path,
    tmp_path: Path,
) -> None:
    adapters = adapters_arg(foreign_loras)
    merged = tmp_path / "merged"
    proc = subprocess.run(
        [sys.executable, "-m", "lorareuse_plugin.cli", "merge", "--adapters", adapters, "--out", str(merged)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    ours = _run(
        "lorareuse-eval",
        "lorareuse-hf",
        f"pretrained={test_base},adapters={adapters},method=delta_mean,dtype=float32",
        str(local_tasks),
        tmp_path / "ours",
    )
    stock = _run(
        "lm_eval",
        "hf",
        f"pretrained={test_base},peft={merged},dtype=float32",
        str(_stock_include(local_tasks, tmp_path / "stock_tasks")),
        tmp_path / "stock",
    )
    assert _scores(ours) == _scores(stock)
    # not only equal scores: the same generations, and log-likelihoods equal to float32 round-off
    mine, theirs = _samples(tmp_path / "ours"), _samples(tmp_path / "stock")
    assert set(mine) == set(theirs) == {OUR_TASK, "byo_gen", "byo_mc"}
    for task in mine:
        for (d1, r1), (d2, r2) in zip(mine[task], theirs[task], strict=True):
            assert d1 == d2
            if task == "byo_mc":
                assert [float(x[0]) for x in r1] == pytest.approx([float(x[0]) for x in r2], abs=1e-4)
            else:
                assert r1 == r2
    assert any(r != [""] for _, r in mine["byo_gen"])  # the model generated something to compare
