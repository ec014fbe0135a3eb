"""``lorareuse serve``: vLLM's OpenAI server over loopback, scored by stock lm-eval ``local-completions``."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import lorareuse_plugin
from lorareuse_plugin.errors import ConfigError

from ..conftest import tiny_task_metadata

pytest.importorskip("vllm")
from ..library.test_foreign import adapters_arg, foreign_loras  # noqa: E402, F401  (session fixture)
from .test_vllm import assert_samples_agree  # noqa: E402

TASKS = ["lorareuse_hop1_f", "lorareuse_hop2_f", "lorareuse_twohop_f_mc"]
MODULE = "delta_mean_hop1+hop2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_plan_serves_every_expert_and_merge_with_a_spare_slot(tiny_library):
    from lorareuse_plugin.models.serve import plan

    p = plan(str(tiny_library), ["delta_mean:hop1+hop2", "svd:hop1+hop2:rank=4"])
    assert list(p.modules) == ["hop1", "hop2", "oracle", "target", "union", MODULE, "svd_hop1+hop2_rank_4"]
    assert all(path.is_absolute() and (path / "adapter_config.json").is_file() for path in p.modules.values())
    cmd = p.argv("127.0.0.1", 8000, "float32", 256, [])
    assert cmd[cmd.index("--max-loras") + 1] == str(len(p.modules) + 1)  # base rows never share a live slot
    assert "lm_head" not in cmd and cmd[cmd.index("--max-lora-rank") + 1] == "8"  # 2 × rank 4


def test_plan_serves_foreign_adapters_as_plain_copies(foreign_loras):  # noqa: F811
    """Two plain-PEFT LoRAs (ranks 4 and 8, a rank_pattern and an alpha_pattern, different targets):
    each served module is a plain copy (one r, scaling 1, no patterns) with the very same ΔW."""
    import torch

    from lorareuse_plugin.library.adapter import read_adapter_info
    from lorareuse_plugin.models.serve import plan
    from lorareuse_plugin.reuse.lora_io import read_adapter

    p = plan(None, ["delta_mean:alpha+beta"], adapters=adapters_arg(foreign_loras))
    assert list(p.modules) == ["alpha", "beta", "delta_mean_alpha+beta"]
    assert p.base == str(read_adapter_info("alpha", foreign_loras / "alpha").base_model_name_or_path)
    merged = read_adapter_info("merged", p.modules["delta_mean_alpha+beta"])
    assert merged.rank == 4 + 8 and p.max_lora_rank == 16  # the smallest engine rank >= 12 (vLLM's set)
    assert p.targets == ("q_proj", "v_proj", "o_proj", "up_proj", "down_proj")
    for name in ("alpha", "beta"):
        config = json.loads((p.modules[name] / "adapter_config.json").read_text())
        assert not config.get("rank_pattern") and not config.get("alpha_pattern")
        assert config["lora_alpha"] == config["r"] == read_adapter_info(name, foreign_loras / name).rank
        served, own = read_adapter(p.modules[name]), read_adapter(foreign_loras / name)
        assert set(served.modules) == set(own.modules)
        for module in own.modules:
            torch.testing.assert_close(served.delta(module), own.delta(module), rtol=0, atol=1e-6)
    folder = plan(str(foreign_loras), [])  # the same adapters as a plain folder
    assert list(folder.modules) == ["alpha", "beta"]
    for name, path in folder.modules.items():
        weights = "adapter_model.safetensors"
        assert (path / weights).read_bytes() == (p.modules[name] / weights).read_bytes()


def test_foreign_adapters_without_a_common_base_need_pretrained(foreign_loras, tmp_path):  # noqa: F811
    import shutil

    from lorareuse_plugin.models.serve import plan

    for name in ("alpha", "beta"):
        shutil.copytree(foreign_loras / name, tmp_path / name)
    config = json.loads((tmp_path / "beta" / "adapter_config.json").read_text())
    (tmp_path / "beta" / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "x"}))
    with pytest.raises(ConfigError, match="names no common base") as err:
        plan(str(tmp_path), [])
    assert "pass --pretrained" in str(err.value)
    assert plan(str(tmp_path), [], pretrained=config["base_model_name_or_path"]).modules


@pytest.mark.parametrize(
    "merge,message",
    [
        ("single:hop1", "writes no merged adapter"),
        ("delta_mean", "must look like method:experts"),
        ("delta_mean:hop1+nope", "not in library"),
        ("svd:hop1+hop2:rank", "must look like name=value"),
    ],
)
def test_bad_merges_are_one_line_before_anything_starts(tiny_library, merge, message):
    from lorareuse_plugin.models.serve import plan

    with pytest.raises(ConfigError, match=message) as err:
        plan(str(tiny_library), [merge])
    assert "\n" not in str(err.value)


def test_a_busy_port_is_refused_in_one_line(tiny_library):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "lorareuse_plugin.cli", "serve", "--library", str(tiny_library)]
        out = subprocess.run([*cmd, "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(f"lorareuse: error: cannot listen on 127.0.0.1:{port}")


def _live_members(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies (a container's init may not reap them)."""
    pids = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(stat))
    return pids


def _wait_until_up(proc, port: int, timeout: float = 300) -> list[str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"lorareuse serve exited with {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
                return [m["id"] for m in json.load(r)["data"]]
        except OSError:
            time.sleep(2)
    raise AssertionError("lorareuse serve did not come up in time")


def test_serve_scores_a_merged_module_through_stock_local_completions(tiny_library, test_base, tmp_path):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from lorareuse_plugin.models import register_models

    port = _free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed in finally
    cmd = [sys.executable, "-m", "lorareuse_plugin.cli", "serve", "--library", str(tiny_library)]
    cmd += ["--merge", "delta_mean:hop1+hop2", "--port", str(port), "--max-model-len", "256"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))
    try:
        models = _wait_until_up(proc, port)
        assert {"base", "hop1", "hop2", MODULE} <= set(models)
        tm = TaskManager(
            include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False, metadata=tiny_task_metadata()
        )
        common = {"tasks": TASKS, "task_manager": tm, "bootstrap_iters": 0}
        served = simple_evaluate(
            model="local-completions",
            model_args={
                "model": MODULE,
                "base_url": f"http://127.0.0.1:{port}/v1/completions",
                "tokenizer": str(test_base),
                "num_concurrent": 1,
                "max_retries": 1,
                "add_bos_token": True,  # as lm-eval's hf/vllm models do for this tokenizer
            },
            **common,
        )
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:  # pragma: no cover - only when a clean stop failed
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
    assert proc.returncode is not None
    deadline = time.time() + 30
    while _live_members(proc.pid) and time.time() < deadline:
        time.sleep(0.5)
    assert _live_members(proc.pid) == []  # no engine process of the server's session survives
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):  # nobody listens any more
        s.connect(("127.0.0.1", port))

    register_models()
    local = simple_evaluate(
        model="lorareuse-vllm",
        model_args={"library": str(tiny_library), "method": "delta_mean", "experts": "hop1+hop2", "dtype": "float32"}
        | {"max_model_len": 256},
        batch_size=8,
        **common,
    )
    assert_samples_agree(served, local, TASKS)
    for task in TASKS:
        assert served["results"][task] == local["results"][task]
