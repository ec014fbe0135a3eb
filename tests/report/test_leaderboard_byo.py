"""The leaderboard on adapters that are not ours and on lm-eval tasks that are not ours: two LoRAs
trained with plain PEFT in a plain folder, two local YAML tasks (``--include_path``) beside one task
of ours; oracle routing appears only where ``routes`` say which adapter serves which task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorareuse_plugin.errors import ConfigError, LibraryError
from lorareuse_plugin.report.leaderboard import run_leaderboard

from ..library.test_foreign import foreign_loras  # noqa: F401  (session fixture)
from ..models.test_byo import OUR_TASK, QUESTIONS, local_tasks  # noqa: F401  (module fixture)

ROUTES = "byo_gen:alpha+byo_mc:beta+lorareuse_*:beta"
TASKS = ["byo_gen", "byo_mc", OUR_TASK]


def _board(lib: Path, out: Path, include: Path, log: list[str], **kw) -> dict:
    return run_leaderboard(
        [lib],
        out,
        methods=("delta_mean", "seq_arrow"),
        tasks=TASKS,
        include_path=[include],
        batch_size=4,
        limit=4,
        log=log.append,
        **kw,
    )


def test_leaderboard_runs_foreign_adapters_on_local_tasks(
    foreign_loras: Path,  # noqa: F811
    local_tasks: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    log: list[str] = []
    summary = _board(foreign_loras, tmp_path / "board", local_tasks, log, routes=ROUTES)
    entries = list(dict.fromkeys(c["entry"] for c in summary["cells"]))
    assert entries == [
        "base",
        "expert:alpha",
        "expert:beta",
        "delta_mean[alpha+beta]",
        "seq_arrow[alpha+beta]",
        "oracle-routing[alpha+beta]",
    ]
    cells = {(c["entry"], c["task"]): c for c in summary["cells"]}
    mc, gen = cells[("base", "byo_mc")], cells[("base", "byo_gen")]
    # chance from the items themselves: 3 choices per question; four distinct gold answers
    assert mc["form"] == "mc" and mc["split"] is None and mc["n"] == 4
    assert mc["chance"] == pytest.approx(1 / 3) and mc["chance_how"] == "1/#choices"
    assert gen["chance"] == pytest.approx(1 / len({a for _, a, _ in QUESTIONS}))
    assert cells[("base", OUR_TASK)]["split"] == "probe_hop1"  # ours: still described by the catalog
    # every item outcome is the one lm-eval wrote for that document
    run = tmp_path / "board" / "runs" / foreign_loras.name / "seed0" / "delta_mean_alpha-beta"
    written = {json.loads(line)["doc_id"]: json.loads(line)["acc"] for line in (run / "samples_byo_mc.jsonl").open()}
    row = next(r for r in summary["rows"] if r["entry"] == "delta_mean[alpha+beta]" and r["task"] == "byo_mc")
    assert dict(zip(row["items"].doc_ids, row["items"].correct, strict=True)) == {d: int(v) for d, v in written.items()}
    # items cluster by the gold choice's text, not by its position among the choices
    assert row["items"].clusters == tuple(a for _, a, _ in QUESTIONS)
    # the oracle row served each task by the adapter its route names
    oracle = tmp_path / "board" / "runs" / foreign_loras.name / "seed0" / "oracle-routing_alpha-beta"
    for task, expert in (("byo_gen", "alpha"), ("byo_mc", "beta"), (OUR_TASK, "beta")):
        served = {json.loads(line)["lorareuse_expert"] for line in (oracle / f"samples_{task}.jsonl").open()}
        assert served == {expert}
    # reuse entries are compared, paired, with their best single adapter on the tasks that are not ours
    compared = {(p["entry"], p["task"]) for p in summary["paired"] if p["against"] == "best member"}
    assert ("delta_mean[alpha+beta]", "byo_gen") in compared and ("seq_arrow[alpha+beta]", "byo_mc") in compared
    assert not summary["composition_gap"] and not summary["claims"]  # both are about our composed tests
    # a second run finds every result on disk
    again: list[str] = []
    _board(foreign_loras, tmp_path / "board", local_tasks, again, routes=ROUTES)
    assert again and all(line.endswith(": cached") for line in again)


def test_without_routes_the_oracle_row_is_left_out_and_said_so(
    tiny_library: Path,
    local_tasks: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    log: list[str] = []
    summary = run_leaderboard(
        [tiny_library],
        tmp_path / "board",
        methods=("delta_mean",),
        tasks=["byo_gen"],
        include_path=[local_tasks],
        batch_size=4,
        limit=2,
        log=log.append,
    )
    entries = {c["entry"] for c in summary["cells"]}
    assert "expert:union" in entries and not any(e.startswith("oracle-routing") for e in entries)
    assert any("no oracle-routing row" in line and "--routes" in line for line in log)


@pytest.mark.parametrize(
    "kwargs,error,needle",
    [
        ({"tasks": None, "include_path": None}, ConfigError, "pass --tasks"),
        ({"seeds": [0, 1]}, ConfigError, "leave out --seeds"),
        ({"routes": "byo_gen:gamma"}, ConfigError, "--routes names expert(s) gamma"),
        ({"routes": "byo_gen"}, ConfigError, "TASK_GLOB:expert"),
        ({"tasks": ["byo_nope"]}, ConfigError, "unknown task(s) byo_nope"),
        ({"tasks": ["lorareuse_hop1_ff"]}, ConfigError, "did you mean lorareuse_hop1_f"),
        ({"tasks": None}, ConfigError, "--include_path needs --tasks"),
        ({"include_path": ["/nonexistent/tasks"]}, ConfigError, "not a directory"),
        ({"adapters": "alpha=/x"}, ConfigError, "is not NAME:PATH"),
    ],
)
def test_bad_foreign_leaderboard_input(
    foreign_loras: Path,  # noqa: F811
    local_tasks: Path,  # noqa: F811
    tmp_path: Path,
    kwargs: dict,
    error: type[Exception],
    needle: str,
) -> None:
    args = {"tasks": TASKS, "include_path": [local_tasks], **kwargs}
    with pytest.raises(error, match=needle.replace("(", r"\(").replace(")", r"\)")):
        run_leaderboard([foreign_loras], tmp_path / "b", batch_size=4, limit=2, log=lambda m: None, **args)
    assert not (tmp_path / "b").exists()  # refused before anything is written


def test_a_folder_without_adapters_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(LibraryError, match="holds no PEFT adapter sub-folders"):
        run_leaderboard([tmp_path / "empty"], tmp_path / "b", tasks=["byo_gen"], log=lambda m: None)
    assert not (tmp_path / "b").exists()
