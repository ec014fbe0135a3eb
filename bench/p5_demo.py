"""P5 — ``lorareuse demo`` wall time on this machine, per stage (base, libraries, leaderboard).

Runs the demo as a user would (a subprocess) in the bench cache; the first run on a machine is
cold (the libraries seeded from their shipped builds and checked, the ladder run from scratch),
later ones reuse the cache and say so. ``lorareuse demo --train`` times the training as well.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import common


def main() -> list[dict]:
    cold = not (common.DEMO_OUT / "libraries").exists()
    exe = Path(sys.executable).parent / "lorareuse"
    start = time.perf_counter()
    out = subprocess.run([str(exe), "demo", "--out", str(common.DEMO_OUT)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"P5: lorareuse demo failed: {out.stderr.strip().splitlines()[-1:]}")
    m = re.search(r"wall time: base (\d+) s, libraries (\d+) s, leaderboard (\d+) s, total (\d+) s", out.stdout)
    if not m:
        raise SystemExit("P5: lorareuse demo printed no wall-time line")
    cache = "cold cache" if cold else "warm cache"
    base, libs, board, _ = (float(x) for x in m.groups())
    return [
        common.emit("P5", f"demo stage: base ({cache})", base, "s"),
        common.emit("P5", f"demo stage: libraries ({cache})", libs, "s"),
        common.emit("P5", f"demo stage: leaderboard ({cache})", board, "s"),
        common.emit("P5", f"demo total incl. process start ({cache})", wall, "s"),
    ]


if __name__ == "__main__":
    main()
