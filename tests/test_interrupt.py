"""Real-kill interrupt safety: SIGKILL ``lorareuse merge`` and ``lorareuse library build`` while they write.

Whatever the moment of the kill, the output is either absent / the old state, or complete and
verified — never a half-written adapter dir or library that later loads — and a re-run succeeds,
resuming what was done and sweeping the dead writer's temp files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lorareuse_plugin.errors import LibraryError

from .conftest import TINY_RECIPE

SEED = int(os.environ.get("LORAREUSE_INTERRUPT_SEED", time.time_ns() % 100_000))


def tree(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
        for p in sorted(path.rglob("*"))
    }


def spawn(argv: list[str], cache: Path) -> subprocess.Popen:
    env = {**os.environ, "LORAREUSE_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lorareuse_plugin.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def kill_while_writing(proc: subprocess.Popen, dirs: list[Path], jitter: float, rng: random.Random, nth: int = 1):
    """SIGKILL ``proc`` within ``jitter`` seconds of the ``nth`` temp entry *it* creates (``.<name>.tmp-<pid>-…``)
    appearing in one of ``dirs``. Returns the temp names seen at the kill, or None if it finished first."""
    tag = f".tmp-{proc.pid}-"
    seen: set[str] = set()
    while proc.poll() is None:
        for d in dirs:
            try:
                seen |= {n for n in os.listdir(d) if tag in n}
            except FileNotFoundError:
                pass
        if len(seen) >= nth:
            time.sleep(rng.uniform(0, jitter))
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            return sorted(seen) if proc.returncode == -signal.SIGKILL else None
        time.sleep(0.0002)
    proc.communicate()
    return None


def stray(parent: Path, name: str) -> list[str]:
    return sorted(n for n in os.listdir(parent) if n.startswith(f".{name}.tmp-") or n.startswith(f".{name}.old-"))


# ---- lorareuse merge --------------------------------------------------------------------------------------------


def test_killed_merge_leaves_no_half_written_adapter(tiny_library: Path, tmp_path: Path) -> None:
    from lorareuse_plugin.reuse.lora_io import read_adapter
    from lorareuse_plugin.reuse.merge import MARKER, merged_adapter
    from lorareuse_plugin.reuse.spec import parse_spec

    rng = random.Random(SEED)
    ref = merged_adapter(parse_spec(tiny_library, "delta_mean", "hop1+hop2", "0.6+0.4"), out=tmp_path / "ref")
    expected = tree(ref)
    parent = tmp_path / "work"
    parent.mkdir()
    out = parent / "merged"
    argv = [
        "merge",
        "--library",
        str(tiny_library),
        "--experts",
        "hop1,hop2",
        "--weights",
        "0.6+0.4",
        "--out",
        str(out),
    ]
    kills = []
    for attempt in range(6):
        cache = tmp_path / f"cache{attempt}"  # a fresh cache: every attempt computes and writes the merge
        proc = spawn(argv, cache)
        seen = kill_while_writing(proc, [parent, cache / "merged"], jitter=0.003, rng=rng)
        if seen:
            kills.append(seen)
        else:
            assert proc.returncode == 0, proc.stderr[-2000:]
        # absent (the old state: nothing, or the previous attempt's complete adapter) or complete — never half
        assert tree(out) in (None, expected), f"seed {SEED}, attempt {attempt}: half-written {out} after {seen}"
        for d in (cache / "merged").glob("[!.]*"):  # the content-addressed cache obeys the same rule
            assert tree(d) == expected, f"seed {SEED}: half-written cache entry {d}"
        if len(kills) >= 3:
            break
    assert kills, f"seed {SEED}: no attempt was killed while writing (every merge finished first)"
    # the re-run (with the last attempt's cache and the dead writers' temp files around) succeeds
    proc = spawn(argv, cache)
    proc.communicate()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert tree(out) == expected
    assert read_adapter(out).modules and json.loads((out / MARKER).read_text())["spec"]["weights"] == [0.6, 0.4]
    assert stray(parent, out.name) == [], "temp dirs of killed merges were not swept"


# ---- lorareuse library build ------------------------------------------------------------------------------------


def _check_killed_library(out: Path, experts: tuple[str, ...], seed_msg: str) -> dict:
    """A killed build's library: refused as a whole, or complete and verified; every expert the manifest
    lists matches its hashes. Returns the manifest's experts (those a re-run should skip)."""
    from lorareuse_plugin.library.manifest import MANIFEST, load_library, verify_expert
    from lorareuse_plugin.reuse.lora_io import read_adapter

    try:
        lib = load_library(out)
    except LibraryError as e:
        assert "\n" not in str(e) and ("incomplete" in str(e) or "not found" in str(e)), f"{seed_msg}: {e}"
    else:
        assert set(lib.expert_names) == set(experts), f"{seed_msg}: an incomplete library loads: {lib.expert_names}"
        for e in experts:
            assert read_adapter(lib.expert_dir(e)).modules
    if not (out / MANIFEST).is_file():
        return {}
    manifest = json.loads((out / MANIFEST).read_text())  # written atomically: always whole JSON
    for name, entry in manifest["experts"].items():
        verify_expert(out, name, entry)  # no listed expert is half-written
    return manifest["experts"]


def test_killed_library_build_is_refused_until_a_rerun_completes_it(test_base: Path, tmp_path: Path) -> None:
    from lorareuse_plugin.library.manifest import load_library

    rng = random.Random(SEED)
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["experts"] = {"hop1": {}, "hop2": {}, "target": {}}
    experts = tuple(recipe["experts"])
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe))
    parent = tmp_path / "work"
    parent.mkdir()
    cache = Path(os.environ["LORAREUSE_CACHE"])
    # temp entries the build creates, in order: manifest, hop1 dir, manifest, hop2 dir, manifest, target dir, …;
    # kill at a random one of them (mid-write of an expert dir or of the manifest). A temp entry can come and go
    # between two polls; then the build finishes and we try again on a fresh --out.
    for attempt in range(3):
        out = parent / f"lib{attempt}"
        argv = [
            "library",
            "build",
            str(recipe_file),
            "--base",
            str(test_base),
            "--out",
            str(out),
            "--allow-failed-controls",
        ]
        nth = rng.choice([2, 3, 4, 5, 6])
        proc = spawn(argv, cache)
        seen = kill_while_writing(proc, [out, out / "experts"], jitter=0.02, rng=rng, nth=nth)
        if seen:
            break
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert seen, f"seed {SEED}: every build finished before it could be killed while writing"
    done = _check_killed_library(out, experts, f"seed {SEED}, killed at #{nth} of {seen}")
    proc = spawn(argv, cache)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-2000:]
    lib = load_library(out)  # verifies every file against its hash
    assert set(lib.expert_names) == set(experts) and "incomplete" not in lib.manifest
    for name in done:  # experts finished before the last kill are resumed, not retrained
        assert f"expert {name}: up to date, skipped" in stdout, stdout
    for d in (parent, out, out / "experts"):
        assert not [n for n in os.listdir(d) if ".tmp-" in n or ".old-" in n], f"stray temp files in {d}"
