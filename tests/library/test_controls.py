"""Positive controls: they are measured, they gate, and a base that cannot pass them fails them."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from lorareuse_plugin.control import Control, ControlFailed, enforce, format_controls
from lorareuse_plugin.stats import Proportion, wilson


def test_wilson_interval_is_honest_at_0_and_1():
    lo, hi = wilson(0, 100)
    assert lo == 0.0 and 0.03 < hi < 0.04
    lo, hi = wilson(100, 100)
    assert 0.96 < lo < 0.97 and hi == 1.0
    assert wilson(0, 0) == (0.0, 1.0)
    assert str(Proportion(97, 100)).startswith("0.97 [0.92, 0.99]")


def test_statements_carry_no_eos_answers_do():
    from lorareuse_plugin.data import formats as fmt
    from lorareuse_plugin.library.train import encode_records

    class Tok:
        eos_token_id = 2

        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [1] * add_special_tokens + [10 + ord(c) % 50 for c in text]}

    statement, qa = encode_records(Tok(), [fmt.statement("s", "A was born in B."), fmt.qa("q", "Where?", "B")])
    assert statement[0][-1] != 2 and statement[1][0] == -100 and statement[1][1:] == statement[0][1:]
    assert qa[0][-1] == 2 and qa[1][-1] == 2


def test_a_missed_gate_raises_unless_allowed_and_the_table_says_so():
    passed = Control("decomposition", "hop1 -> hop2", Proportion(95, 100), 0.9, True, 0.01)
    missed = Control("in-context", "base", Proportion(40, 100), 0.8, True, 0.5)
    reported = Control("union CoT", "union", Proportion(10, 100), 0.8, False, 0.01)
    assert enforce([passed, reported], "x") == []
    with pytest.raises(ControlFailed, match=r"'in-context' missed its gate: 0.40 \[0.31, 0.50\] \(n=100\) < 0.80"):
        enforce([passed, missed], "x")
    assert len(enforce([missed], "x", allow_failed=True)) == 1
    table = format_controls([passed, missed, reported])
    assert "| decomposition | hop1 -> hop2 | 100 | 0.95 [0.89, 0.98] | 0.01 | ≥ 0.90 (gate) | pass |" in table
    assert "FAIL (gate)" in table and "missed (reported)" in table
    assert Control.from_json(missed.to_json()) == missed


def test_the_controls_runner_fails_on_a_base_that_cannot_pass(test_base, lorareuse_cache):
    """The test-size base (2 layers, 1 epoch) cannot read or chain: its gates fail, and
    `lorareuse base build` exits non-zero with the numbers printed."""
    from lorareuse_plugin.base.build import read_base_info

    controls = [Control.from_json(c) for c in read_base_info(test_base)["controls"]]
    assert {c.name for c in controls} >= {"held-out chain, CoT (go/no-go)", "in-context (twohop F, gen)"}
    assert all(c.result.n >= 100 for c in controls)
    with pytest.raises(ControlFailed, match="in-context"):
        enforce(controls, "base")
    env = {**os.environ, "LORAREUSE_CACHE": str(lorareuse_cache)}
    cli = [sys.executable, "-m", "lorareuse_plugin.cli", "base", "build", "--size", "test"]
    run = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 2, run.stderr
    assert "| in-context (twohop F, gen) |" in run.stdout and "FAIL (gate)" in run.stdout
    assert "missed its gate" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    kept = subprocess.run([*cli, "--allow-failed-controls"], capture_output=True, text=True, env=env, timeout=600)
    assert kept.returncode == 0 and "warning" in kept.stderr


def test_library_build_records_decomposition_and_union_cot_controls(tiny_library):
    manifest = json.loads((tiny_library / "manifest.json").read_text())
    names = [c["name"] for c in manifest["controls"]["controls"]]
    assert names == ["decomposition (twohop F)", "union expert, CoT (twohop F)"]
    decomposition = manifest["controls"]["controls"][0]
    assert decomposition["gate"] and decomposition["n"] == 4 and len(decomposition["ci95"]) == 2


def _shipped_default():
    from lorareuse_plugin.base.build import get_size, shipped_base

    return shipped_base(get_size("default"))


def test_the_shipped_base_was_built_from_the_current_corpus():
    """A corpus (or recipe) change must come with a rebuilt shipped base (`make ship-base`)."""
    import hashlib

    from lorareuse_plugin.base.build import SHIPPED, base_key, get_size, read_base_info
    from lorareuse_plugin.base.corpus import corpus_lines

    info = read_base_info(SHIPPED / "default")
    assert info is not None, "no shipped default base: run `make ship-base`"
    assert info["corpus"]["sha256"] == hashlib.sha256("\n".join(corpus_lines()).encode()).hexdigest()
    assert info["key"] == base_key(get_size("default"))
    size = sum(f.stat().st_size for f in (SHIPPED / "default").iterdir())
    assert size <= 25 * 2**20
    assert _shipped_default() is not None  # weights match their recorded hash


@pytest.mark.slow
def test_experts_trained_on_the_shipped_base_chain_past_the_first_sentence(tmp_path):
    """With EOS after every lone statement, 40 epochs taught the union expert to stop after one
    sentence (every CoT answer did). Now its chains go on, and the decomposition over the
    library's own members composes."""
    from lorareuse_plugin.library.build import build_library
    from lorareuse_plugin.library.recipe import load_recipe

    recipe = {
        "name": "eos_check",
        "base": "default",
        "data": {"family": "twohop", "familiarity": "F", "seed": 1, "n_test": 12, "n_target": 6},
        "defaults": {"epochs": 30, "lr": 1e-3, "batch_size": 16},
        "experts": {"hop1": {}, "hop2": {}, "union": {}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    manifest = build_library(load_recipe(path), tmp_path / "lib", progress=False, log=lambda m: None)
    samples = manifest["controls"]["samples"]
    assert samples["union_cot_past_first_sentence"][0] >= 0.9, samples["union_cot"]
    for text in samples["union_cot"]:
        assert text.count(".") >= 2, text
    decomposition = Control.from_json(manifest["controls"]["controls"][0])
    assert decomposition.result.value >= 0.9, samples["decomposition"]


def test_chat_experts_are_asked_in_the_chat_template_plain_ones_plainly(monkeypatch):
    """A ``chat: true`` member must be asked as it was trained (a user turn of the base's template),
    a plain member in ``Q: …\\nA:`` — per member, inside one decomposition."""
    from pathlib import Path

    from transformers import AutoTokenizer

    from lorareuse_plugin.base.chat import chat_prompt
    from lorareuse_plugin.data.build import build_dataset, make_spec
    from lorareuse_plugin.data.formats import qa_prompt
    from lorareuse_plugin.library import controls

    shipped = Path(controls.__file__).parents[1] / "base/shipped/default"
    tok = AutoTokenizer.from_pretrained(shipped)
    tok.chat_template = (  # ChatML, as SmolLM2's: unlike the embedded base's own, visibly not "Q: …"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    docs = build_dataset(make_spec("twohop", "F", 0, 3, 3, None)).splits["test"]
    asked: list[list[str]] = []

    def fake_generate(model, tok, prompts, **kw):  # the prompts are what this test checks
        asked.append(list(prompts))
        return ["Zelandia" for _ in prompts]

    class TwoAdapters:
        def set_adapter(self, name):
            pass

    monkeypatch.setattr(controls, "greedy_generate", fake_generate)
    controls.decomposition_answers(TwoAdapters(), tok, "twohop", docs, {"hop1": True, "hop2": False})
    first, second = asked
    assert all(p.startswith("<|im_start|>user\nQ: ") and p.endswith("<|im_start|>assistant\n") for p in first)
    assert first[0] == chat_prompt(tok, qa_prompt(controls.decompose("twohop", docs[0]["prompt"]).first))
    assert all(p.startswith("Q: ") and "Zelandia" in p for p in second)
    asked.clear()
    controls.decomposition_answers(TwoAdapters(), tok, "twohop", docs)
    assert all(p.startswith("Q: ") for p in asked[0] + asked[1])
