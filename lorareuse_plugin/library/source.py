"""Where a spec's adapters come from: a library of ours (``manifest.json``), a plain folder of PEFT
LoRA dirs (expert name = folder name), or ``adapters=NAME:PATH+NAME:PATH``.

Every source yields the same value, a ``Library``: adapters read from their own files
(``AdapterInfo``), plus what only our manifest knows (the world the experts were trained on, the
base's hashes, which experts are contaminated by design). Merges, routers, checks and backends
use this value and never ask which kind it is, except to say what they cannot do without a world.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorareuse_plugin.errors import ConfigError, LibraryError
from lorareuse_plugin.io import file_sha256
from lorareuse_plugin.library.adapter import CONFIG_FILE, FOREIGN_FIX, OURS_FIX, AdapterInfo, read_adapter_info

MANIFEST = "manifest.json"
# adapter names become PEFT adapter names (ModuleDict keys: no dots) and route-log labels
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_RESERVED = ("base", "merged")  # route-log label of the base / vLLM's name for a merged adapter
ADAPTERS_HELP = "adapters=NAME:PATH+NAME:PATH, e.g. adapters=hop1:/loras/hop1+hop2:/loras/hop2"


@dataclass(frozen=True)
class Library:
    """Named adapters, each read and checked from its own files.

    ``kind``: ``manifest`` (built by ``library build``), ``imported`` (``library import``: our
    provenance, no world), ``folder`` or ``adapters`` (foreign, nothing but the dirs)."""

    root: Path | None
    manifest: dict | None
    adapters: dict[str, AdapterInfo]
    kind: str = "manifest"

    @property
    def expert_names(self) -> tuple[str, ...]:
        return tuple(self.adapters)

    def adapter(self, name: str) -> AdapterInfo:
        if name not in self.adapters:
            raise LibraryError(f"{self.describe()} has no expert {name!r}: it has {', '.join(self.expert_names)}")
        return self.adapters[name]

    def expert_dir(self, name: str) -> Path:
        return self.adapter(name).path

    def describe(self) -> str:
        if self.kind == "adapters":
            return "adapters=" + "+".join(self.expert_names)
        return f"library {self.root}"

    @property
    def label(self) -> str:
        if self.manifest is not None:
            return str(self.manifest.get("library") or self.root.name)  # type: ignore[union-attr]
        return self.root.name if self.root is not None else "adapters"

    @property
    def has_world(self) -> bool:
        """Built by us from a world: its test and probe splits can be regenerated."""
        return self.manifest is not None and isinstance(self.manifest.get("data"), dict)

    @property
    def members(self) -> tuple[str, ...]:
        """The experts a spec uses when it names none: the family's members (ours), else every adapter."""
        if self.has_world:
            members = self.manifest["data"]["members"]  # type: ignore[index]
            return tuple(e for e in self.expert_names if e in members)
        return self.expert_names

    @property
    def base(self) -> dict | None:
        """``name_or_path`` (+ ``config_hash``/``weights_hash`` when recorded) of the base the adapters
        were trained on; for foreign adapters their common ``base_model_name_or_path``, if any."""
        if self.manifest is not None:
            return self.manifest["base"]
        names = {a.base_model_name_or_path for a in self.adapters.values()}
        if len(names) == 1 and "" not in names:
            return {"name_or_path": names.pop()}
        return None

    @property
    def fix(self) -> str:
        """What to do about a missing or corrupt adapter file of this source."""
        if self.kind == "manifest":
            return OURS_FIX
        if self.kind == "imported":
            return "re-import it with `lorareuse library import`"
        return FOREIGN_FIX

    def contaminated(self, name: str) -> bool:
        if self.manifest is None:
            return False
        return bool(self.manifest["experts"].get(name, {}).get("contaminated"))

    @property
    def identity_sha256(self) -> str:
        """The manifest's hash, or for foreign adapters a hash of their names and file hashes: what a
        cache key needs to tell two sources apart."""
        if self.root is not None and self.manifest is not None:
            return file_sha256(self.root / MANIFEST)
        blob = {n: a.files for n, a in sorted(self.adapters.items())}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()

    def dataset(self):
        """The world the experts were trained on (generated, cached by spec)."""
        if not self.has_world:
            raise ConfigError(
                f"{self.describe()} holds foreign adapters: it has no world of ours to generate data from"
            )
        from lorareuse_plugin.data.build import build_dataset, make_spec

        data = self.manifest["data"]  # type: ignore[index]
        return build_dataset(
            make_spec(data["family"], data["familiarity"], data["seed"], **data["sizes"], known=data.get("known"))
        )


def check_name(name: str, where: str) -> str:
    if not _NAME.match(name) or name in _RESERVED:
        raise ConfigError(
            f"{where}: {name!r} can't name an adapter (letters, digits, '_' and '-' only; not "
            f"{' or '.join(_RESERVED)}): rename it"
        )
    return name


def parse_adapters(value: Any) -> dict[str, Path]:
    """``NAME:PATH+NAME:PATH`` (or a dict / list of ``NAME:PATH``) -> {name: path}."""
    if isinstance(value, dict):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        parts = list(value) if isinstance(value, list | tuple) else str(value).split("+")
        items = []
        for part in parts:
            name, sep, path = str(part).strip().partition(":")
            if not sep or not name.strip() or not path.strip():
                raise ConfigError(f"adapters={value!r}: {str(part).strip()!r} is not NAME:PATH; use {ADAPTERS_HELP}")
            items.append((name.strip(), path.strip()))
    if not items:
        raise ConfigError(f"adapters= is empty; use {ADAPTERS_HELP}")
    out: dict[str, Path] = {}
    for name, path in items:
        check_name(name, "adapters=")
        if name in out:
            raise ConfigError(f"adapters=: {name!r} is named twice; give each adapter its own name")
        out[name] = Path(path).expanduser().resolve()
    return out


def from_dirs(dirs: dict[str, Path], root: Path | None, kind: str) -> Library:
    adapters = {}
    for name, path in dirs.items():
        if not path.is_dir():
            raise LibraryError(f"adapter {name}: {path} is not a directory; pass a PEFT LoRA adapter directory")
        adapters[name] = read_adapter_info(name, path)
    return Library(root, None, adapters, kind)


def open_library(library: Any = None, adapters: Any = None) -> Library:
    """The ``Library`` that ``library=`` or ``adapters=`` names; checked, nothing loaded."""
    if isinstance(library, Library):
        return library
    if library and adapters:
        raise ConfigError("pass library=<dir> or adapters=NAME:PATH+…, not both")
    if adapters:
        return from_dirs(parse_adapters(adapters), None, "adapters")
    if not library:
        raise ConfigError(
            f"no adapters given: pass library=<dir> (ours, or a folder of PEFT LoRA dirs) or {ADAPTERS_HELP}"
        )
    root = Path(str(library)).expanduser().resolve()
    if (root / MANIFEST).is_file():
        from lorareuse_plugin.library.manifest import load_library

        return load_library(root)
    if (root / CONFIG_FILE).is_file():
        raise ConfigError(f"library={root} is one adapter dir, not a library: pass adapters={root.name}:{root}")
    subs = sorted(d for d in root.iterdir() if (d / CONFIG_FILE).is_file()) if root.is_dir() else []
    if not subs:
        raise LibraryError(
            f"{root / MANIFEST} not found and {root} holds no PEFT adapter sub-folders: pass a library directory "
            f"(built by `lorareuse library build`), a folder of PEFT LoRA dirs, or {ADAPTERS_HELP}"
        )
    return from_dirs({check_name(d.name, f"library={root}"): d for d in subs}, root, "folder")
