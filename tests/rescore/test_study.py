"""The rescorer study: one cached build per cell, its table read from the builds' markers."""

from lorareuse_plugin.rescore import study

SMALL = {
    "steps": 3,
    "head_steps": 2,
    "chains": 12,
    "head_chains": 4,
    "hidden": 32,
    "intermediate": 64,
    "heads": 2,
    "batch": 8,
}


def test_the_study_builds_each_cell_once_and_tabulates_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LORAREUSE_CACHE", str(tmp_path))
    monkeypatch.setattr(
        study, "CELLS", {"1 layer": {**SMALL, "layers": 1}, "MLM only": {**SMALL, "layers": 1, "nsp": False}}
    )
    said: list[str] = []
    table = study.run_study(progress=False, log=said.append)
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == 4  # two cells x two chain sets
    assert all(r.startswith("| 1 layer | 0 |") for r in rows[:2]) and "n/a" in rows[2]  # no nsp without it
    assert sum(s.startswith("rescorer built in") for s in said) == 2
    assert study.run_study(progress=False, log=said.append) == table  # cached: read back, not rebuilt
    assert sum(s.startswith("rescorer up to date") for s in said) == 2
