"""``lorareuse parity``: one spec on both backends, compared request by request."""

import json
import subprocess
import sys

import pytest


def test_first_divergence_and_classification():
    from transformers import AutoTokenizer

    from lorareuse_plugin.base.build import SHIPPED
    from lorareuse_plugin.models.parity import NEAR_TIE, REAL_DIFFERENCE, classify, first_divergence

    tok = AutoTokenizer.from_pretrained(SHIPPED / "default")
    assert first_divergence(tok, " Fluvuthora", " Fluvuthora") is None
    div = first_divergence(tok, " Fluvuvuthora", " Fluvuthora")
    assert " Fluvuvuthora".startswith(div.prefix + div.a) and " Fluvuthora".startswith(div.prefix + div.b)
    assert len(div.a_ids) == len(div.b_ids) == 1 and div.a_ids != div.b_ids
    div = first_divergence(tok, " Mito", " Mitoora")  # one generation stopped there
    assert div.prefix == " Mito" and div.a == "<stop>" and tok.eos_token_id in div.a_ids and len(div.b_ids) == 1
    assert classify(2e-4, 5e-4, 1e-3) == NEAR_TIE
    assert classify(2e-4, 0.3, 1e-3) == REAL_DIFFERENCE  # vLLM prefers its token by far: not rounding
    assert classify(-0.2, 1e-4, 1e-3) == REAL_DIFFERENCE  # hf's own scoring disagrees with its generation


def test_parity_cli_reports_agreement_for_a_routed_top_k_spec(tiny_library):
    pytest.importorskip("vllm")
    cmd = [sys.executable, "-m", "lorareuse_plugin.cli", "parity", "--library", str(tiny_library)]
    cmd += ["--method", "seq_arrow", "--experts", "hop1+hop2+target", "--param", "top_k=2", "--per-task", "3"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["pass"] and report["routes_agree"] and report["real_differences"] == 0
    assert report["greedy_agreement"] == 1 - len(report["disagreements"]) / report["generate_requests"]
    assert report["max_abs_dlogprob"] <= 1e-4
    assert report["loglikelihood_requests"] == report["generate_requests"] >= 8  # 4 gen tasks, up to 3 docs
    assert "PASS" in out.stdout.splitlines()[-2]


def test_parity_refuses_arrow_in_one_line(tiny_library):
    pytest.importorskip("vllm")
    cmd = [sys.executable, "-m", "lorareuse_plugin.cli", "parity", "--library", str(tiny_library)]
    out = subprocess.run([*cmd, "--method", "arrow"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("lorareuse: error: arrow routes per token")
