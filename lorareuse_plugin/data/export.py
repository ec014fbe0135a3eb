"""Export every split as JSONL plus ``splits.json`` (hashes, sizes, seed) for any trainer."""

from __future__ import annotations

import json
from pathlib import Path

from lorareuse_plugin.data.build import GENERATOR_VERSION, build_dataset, jsonl_bytes
from lorareuse_plugin.data.spec import SplitSpec
from lorareuse_plugin.io import atomic_dir

MANIFEST = "splits.json"


def manifest(spec: SplitSpec) -> dict:
    ds = build_dataset(spec)
    return {
        "generator": "lorareuse",
        "generator_version": GENERATOR_VERSION,
        **spec.to_json(),
        "members": list(ds.family.members),
        "leakage_check": "passed",
        "splits": {
            name: {
                "file": f"{name}.jsonl",
                "role": "eval" if name in ds.family.eval_splits else "train",
                "records": len(ds.splits[name]),
                "sha256": ds.hashes[name],
            }
            for name in ds.family.all_splits
        },
    }


def export(spec: SplitSpec, out: Path) -> dict:
    """Write ``out/<split>.jsonl`` and ``out/splits.json``; all or nothing."""
    ds = build_dataset(spec)
    info = manifest(spec)
    with atomic_dir(out, MANIFEST) as tmp:
        for name in ds.family.all_splits:
            (tmp / f"{name}.jsonl").write_bytes(jsonl_bytes(ds.splits[name]))
        (tmp / MANIFEST).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info
