"""The README runs as written: every ```bash block says whether a test runs it, and the runnable ones
are run here, command by command, in a fresh directory holding what `make demo` writes (the demo's
two-hop F library, seeded from its shipped build). The one change: lm-eval runs without ``--limit``
get ``--limit 2`` (the documented equivalent; the scores are not the point, that the command works is).
A block that cannot run here (hours of training, a download, a server) names the test that covers it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"<!-- readme-test: (run|skip: (.+?)) -->")
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.S | re.M)
LM_EVAL = ("lorareuse-eval run ", "lm_eval ")


def bash_blocks(text: str) -> list[tuple[str | None, str, int]]:
    """(marker, body, line) of every ```bash block; the marker is the line right above it, if any."""
    blocks = []
    for m in BLOCK.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        above = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.fullmatch(above.strip())
        blocks.append((marker.group(1) if marker else None, m.group(1), line))
    return blocks


def commands(body: str) -> list[str]:
    """The block's commands: continuation lines joined, comment lines and trailing comments dropped."""
    out, current = [], ""
    for raw in body.splitlines():
        line = re.sub(r"\s{2,}#.*$", "", raw).rstrip()  # "cmd   # comment" -> "cmd"
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        piece = line.strip() if current else line.rstrip()
        current += piece.rstrip("\\").rstrip() + " " if line.endswith("\\") else piece
        if not line.endswith("\\"):
            out.append(current.strip())
            current = ""
    return out


def as_tested(command: str) -> str:
    if command.startswith(LM_EVAL) and "--limit" not in command:
        return command + " --limit 2"
    return command


def run_commands(cmds: list[str], cwd: Path) -> list[tuple[str, int, str]]:
    """Each command through bash in ``cwd`` with this venv's tools first on PATH; (command, exit, stderr tail)."""
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    done = []
    for cmd in cmds:
        proc = subprocess.run(["bash", "-c", as_tested(cmd)], cwd=cwd, env=env, capture_output=True, text=True)
        done.append((cmd, proc.returncode, proc.stderr[-1500:]))
    return done


def test_every_bash_block_says_whether_it_runs():
    blocks = bash_blocks(README.read_text())
    assert len(blocks) >= 10
    unmarked = [line for marker, _, line in blocks if marker is None]
    assert not unmarked, f"README bash blocks at lines {unmarked} lack <!-- readme-test: run|skip: why -->"
    assert sum(marker == "run" for marker, _, _ in blocks) >= 5


def test_the_runner_parses_continuations_and_comments():
    body = "# a comment\nlorareuse a --x 1 \\\n  --y 2   # why\nlorareuse b '{\"k\": 1}'\n"
    assert commands(body) == ["lorareuse a --x 1 --y 2", "lorareuse b '{\"k\": 1}'"]
    assert as_tested("lorareuse-eval run --model dummy") == "lorareuse-eval run --model dummy --limit 2"
    assert as_tested("lorareuse tasks") == "lorareuse tasks"


def test_a_broken_readme_command_fails_the_runner(tmp_path):
    """The runner can fail: a misspelt task in a README block is a non-zero exit it reports."""
    text = "<!-- readme-test: run -->\n```bash\nlorareuse-eval run --model dummy --tasks lorareuse_twohop_ff\n```\n"
    [(marker, body, _)] = bash_blocks(text)
    assert marker == "run"
    [(cmd, code, err)] = run_commands(commands(body), tmp_path)
    assert code == 2 and "unknown task 'lorareuse_twohop_ff'" in err


@pytest.mark.slow
def test_the_readme_runs_as_written(lorareuse_cache, tmp_path):
    from lorareuse_plugin.demo import seed_library

    seed_library("demo_twohop_f", tmp_path / "runs" / "demo" / "libraries" / "demo_twohop_f", lambda m: None)
    runnable = [cmd for marker, body, _ in bash_blocks(README.read_text()) if marker == "run" for cmd in commands(body)]
    assert len(runnable) >= 8
    failed = [(cmd, code, err) for cmd, code, err in run_commands(runnable, tmp_path) if code != 0]
    assert not failed, "\n\n".join(f"$ {cmd}\nexit {code}\n{err}" for cmd, code, err in failed)
