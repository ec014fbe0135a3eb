import hashlib
import json

import pytest

from lorareuse_plugin.data.build import make_spec
from lorareuse_plugin.data.export import MANIFEST, export
from lorareuse_plugin.errors import ConfigError


def test_export_writes_every_split_with_matching_hashes(tmp_path):
    out = tmp_path / "data"
    info = export(make_spec("twohop", "H", n_test=6, n_target=6), out)
    on_disk = json.loads((out / MANIFEST).read_text())
    assert on_disk == info
    assert set(info["splits"]) == {
        "test",
        "probe_hop1",
        "probe_hop2",
        "probe_target",
        "hop1",
        "hop2",
        "target",
        "union",
        "oracle",
        "ac",
    }
    for name, s in info["splits"].items():
        data = (out / s["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == s["sha256"], name
        lines = data.decode().splitlines()
        assert len(lines) == s["records"]
        json.loads(lines[0])
    assert info["familiarity"] == "H" and info["leakage_check"] == "passed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temp dirs left behind


def test_export_replaces_an_earlier_export_but_refuses_foreign_dirs(tmp_path):
    out = tmp_path / "data"
    export(make_spec("math_ss", None, n_test=3, n_target=3, n_skill=5), out)
    first = (out / MANIFEST).read_text()
    export(make_spec("math_ss", None, seed=1, n_test=3, n_target=3, n_skill=5), out)
    assert (out / MANIFEST).read_text() != first
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        export(make_spec("math_ss", None), foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    import lorareuse_plugin.data.export as export_mod

    def boom(records):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_mod, "jsonl_bytes", boom)
    with pytest.raises(RuntimeError):
        export(make_spec("twohop", "F", n_test=3, n_target=3), tmp_path / "data")
    assert list(tmp_path.iterdir()) == []
