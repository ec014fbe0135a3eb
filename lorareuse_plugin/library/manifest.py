"""``manifest.json``: what every expert of a library was trained on, and hashes that prove it.

``load_library`` verifies every adapter file against its recorded sha256 before anything uses
it: a truncated, edited or missing file is an error, never a silently different model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lorareuse_plugin.errors import LibraryError
from lorareuse_plugin.io import write_bytes_atomic

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
        raise LibraryError(f"{path} is not a lorareuse manifest (format_version {FORMAT_VERSION} expected)")
    return manifest


def write_manifest(root: Path, manifest: dict) -> None:
    write_bytes_atomic(Path(root) / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


@dataclass(frozen=True)
class Library:
    """A verified library: every expert's files match the manifest."""

    root: Path
    manifest: dict

    @property
    def expert_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["experts"])

    def expert_dir(self, name: str) -> Path:
        if name not in self.manifest["experts"]:
            raise LibraryError(f"library {self.root} has no expert {name!r}: it has {', '.join(self.expert_names)}")
        return self.root / self.manifest["experts"][name]["path"]

    @property
    def manifest_hash(self) -> str:
        return file_sha256(self.root / MANIFEST)


def verify_expert(root: Path, name: str, entry: dict) -> None:
    expert_dir = Path(root) / entry["path"]
    if not expert_dir.is_dir():
        raise LibraryError(f"expert {name}: directory {expert_dir} is missing: rebuild with `lorareuse library build`")
    actual = adapter_hashes(expert_dir)
    for fname, digest in entry["files"].items():
        if actual.get(fname) != digest:
            raise LibraryError(
                f"expert {name}: {expert_dir / fname} does not match its manifest hash "
                "(corrupted or edited): rebuild with `lorareuse library build`"
            )


def load_library(root: str | Path) -> Library:
    root = Path(root).expanduser().resolve()
    manifest = read_manifest(root)
    for name, entry in manifest.get("experts", {}).items():
        verify_expert(root, name, entry)
    return Library(root, manifest)
