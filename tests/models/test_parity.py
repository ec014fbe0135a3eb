"""``lorareuse parity``: one spec on both backends, compared request by request."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("vllm")


def test_parity_cli_reports_agreement_for_a_routed_top_k_spec(tiny_library):
    cmd = [sys.executable, "-m", "lorareuse_plugin.cli", "parity", "--library", str(tiny_library)]
    cmd += ["--method", "seq_arrow", "--experts", "hop1+hop2+target", "--param", "top_k=2", "--per-task", "3"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["pass"] and report["routes_agree"] and report["greedy_agreement"] == 1.0
    assert report["max_abs_dlogprob"] <= 1e-4
    assert report["loglikelihood_requests"] == report["generate_requests"] >= 8  # 4 gen tasks, up to 3 docs
    assert "PASS" in out.stdout.splitlines()[-2]


def test_parity_refuses_arrow_in_one_line(tiny_library):
    cmd = [sys.executable, "-m", "lorareuse_plugin.cli", "parity", "--library", str(tiny_library)]
    out = subprocess.run([*cmd, "--method", "arrow"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("lorareuse: error: arrow routes per token")
