"""``manifest.json``: what every expert of a library was trained on, and hashes that prove it.

``load_library`` verifies every adapter file against its recorded sha256 before anything uses
it: a truncated, edited or missing file is an error, never a silently different model.
"""

from __future__ import annotations

import json
from pathlib import Path

from lorareuse_plugin.errors import LibraryError
from lorareuse_plugin.io import file_sha256, write_bytes_atomic
from lorareuse_plugin.library.adapter import ADAPTER_FILES, OURS_FIX, read_adapter_info
from lorareuse_plugin.library.source import MANIFEST, Library

FORMAT_VERSION = 1
IMPORTED = "imported"  # manifest kind written by `library import`: provenance of foreign adapters, no world
INCOMPLETE = "incomplete"  # present while `library build` runs; a library that has it is refused


def adapter_hashes(expert_dir: Path) -> dict[str, str]:
    """sha256 of each adapter file; raises ``LibraryError`` naming a missing one."""
    out = {}
    for name in ADAPTER_FILES:
        p = expert_dir / name
        if not p.is_file():
            raise LibraryError(f"{p} is missing: rebuild the expert with `lorareuse library build`")
        out[name] = file_sha256(p)
    return out


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise LibraryError(f"{path} not found: pass a library directory written by `lorareuse library build`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LibraryError(f"{path} is not valid JSON (line {e.lineno}): rebuild the library") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise LibraryError(
            f"{path} is not a lorareuse manifest (format_version {FORMAT_VERSION} expected): "
            "rebuild the library with `lorareuse library build`"
        )
    problem = _malformed(manifest)
    if problem:
        raise LibraryError(f"{path} is malformed ({problem}): rebuild the library with `lorareuse library build`")
    return manifest


_EXPERT_FIELDS = {"path": str, "files": dict, "weights_hash": str, "rank": int, "targets": list}


def _malformed(manifest: dict) -> str | None:
    """What is missing or mistyped in a manifest, or None: a hand-edited or foreign manifest fails
    here in one line instead of with a KeyError deep inside a backend."""
    base, data, experts = manifest.get("base"), manifest.get("data"), manifest.get("experts")
    if not isinstance(base, dict) or not all(isinstance(base.get(k), str) for k in ("name_or_path", "config_hash")):
        return "'base' lacks name_or_path/config_hash"
    imported = manifest.get("kind") == IMPORTED
    if not imported and (
        not isinstance(data, dict) or not all(k in data for k in ("family", "seed", "sizes", "members"))
    ):
        return "'data' lacks family/seed/sizes/members"
    if not isinstance(experts, dict):
        return "'experts' is not a mapping"
    for name, entry in experts.items():
        if not isinstance(entry, dict):
            return f"expert {name} is not a mapping"
        for key, kind in {**_EXPERT_FIELDS, **({} if imported else {"split": str})}.items():
            if not isinstance(entry.get(key), kind):
                return f"expert {name} lacks {key}"
        rel = Path(entry["path"])
        if rel.is_absolute() or ".." in rel.parts:
            return f"expert {name} has path {entry['path']!r} outside the library"
    return None


def write_manifest(root: Path, manifest: dict) -> None:
    write_bytes_atomic(Path(root) / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def verify_expert(root: Path, name: str, entry: dict, fix: str = "rebuild with `lorareuse library build`") -> None:
    expert_dir = Path(root) / entry["path"]
    if not expert_dir.is_dir():
        raise LibraryError(f"expert {name}: directory {expert_dir} is missing: {fix}")
    actual = adapter_hashes(expert_dir)
    for fname, digest in entry["files"].items():
        if actual.get(fname) != digest:
            raise LibraryError(
                f"expert {name}: {expert_dir / fname} does not match its manifest hash (corrupted or edited): {fix}"
            )


def load_library(root: str | Path) -> Library:
    root = Path(root).expanduser().resolve()
    manifest = read_manifest(root)
    pending = manifest.get(INCOMPLETE)
    if pending is not None:
        todo = ", ".join(pending.get("experts", [])) if isinstance(pending, dict) else ""
        recipe = (pending.get("recipe") if isinstance(pending, dict) else None) or "<recipe>"
        raise LibraryError(
            f"library {root} is incomplete: its build stopped before expert(s) {todo or '?'} were written; "
            f"finish it with `lorareuse library build {recipe} --out {root}`"
        )
    imported = manifest.get("kind") == IMPORTED
    fix = "re-import it with `lorareuse library import`" if imported else OURS_FIX
    adapters = {}
    for name, entry in manifest.get("experts", {}).items():
        verify_expert(root, name, entry, *([fix] if imported else []))
        # ranks and targets from the weights themselves, never from the manifest alone
        adapters[name] = read_adapter_info(name, root / entry["path"], files=dict(entry["files"]), fix=fix)
    return Library(root, manifest, adapters, IMPORTED if imported else "manifest")
