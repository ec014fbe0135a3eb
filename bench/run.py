"""``make bench``: every benchmark in its own process, one table, and bench/RESULTS.md updated.

Prints each benchmark's JSON lines as they come, then a table of every measure; the generated
block of RESULTS.md (between the bench markers) is replaced atomically, the analysis around it
is kept.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

SCRIPTS = (
    "p5_demo",
    "p1_average",
    "p2_routed",
    "p3_arrow",
    "p3_scale",
    "p3_floor",
    "p6_vllm",
    "p7_baselines",
    "p8_library_size",
)  # P5 first: it times a cold demo
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def run(name: str) -> tuple[list[dict], float, str | None]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / f"{name}.py")], cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    rows = []
    for line in proc.stdout:
        if line.startswith("BENCH "):
            print(line.rstrip(), flush=True)
            rows.append(json.loads(line[6:]))
        elif line.strip():
            print(f"  {line.rstrip()}", flush=True)
    err = proc.stderr.read()
    proc.wait()
    failure = None
    if proc.returncode != 0:
        lines = [x for x in err.strip().splitlines() if x.strip()]
        failure = lines[-1] if lines else f"exit status {proc.returncode}"
    return rows, time.perf_counter() - start, failure


def table(rows: list[dict]) -> str:
    out = ["| bench | measure | value | unit | goal |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['bench']} | {r['measure']} | {r['value']:.3f} | {r['unit']} | {r.get('goal', '')} |")
    return "\n".join(out)


def main() -> int:
    only = sys.argv[1:] or list(SCRIPTS)
    rows, timings, failures = [], {}, {}
    total = time.perf_counter()
    for name in only:
        print(f"== {name}", flush=True)
        got, seconds, failure = run(name)
        rows += got
        timings[name] = seconds
        if failure:
            failures[name] = failure
            print(f"!! {name} failed: {failure}", flush=True)
    elapsed = time.perf_counter() - total
    print()
    print(table(rows))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = [
        BEGIN,
        f"Latest `make bench` ({', '.join(only)}): {stamp}, machine: {common.machine()}; "
        f"wall time {elapsed:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}).",
        "",
        table(rows),
    ]
    block += [f"\n**{k} failed**: {v}" for k, v in failures.items()]
    block.append(END)
    results = HERE / "RESULTS.md"
    text = results.read_text() if results.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    tmp = results.with_suffix(".md.tmp")
    tmp.write_text(head + "\n".join(block) + tail)
    tmp.replace(results)
    print(f"\nwrote {results} ({elapsed:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
