"""Resolve ``--base``: the embedded default (``default`` / ``test``), a fetchable real model
(``smollm2``: imported into the cache on first use), a local HF model dir, or a hub id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lorareuse_plugin.errors import ConfigError

EMBEDDED = ("default", "quick", "test")
_VOLATILE_CONFIG_KEYS = ("transformers_version", "torch_dtype", "dtype")


@dataclass(frozen=True)
class BaseRef:
    """What a library was built on: ``name_or_path`` plus hashes that identify the weights."""

    name_or_path: str
    config_hash: str
    weights_hash: str | None  # sha256 over the safetensors files of a local dir; None for hub ids
    architecture: str

    def to_json(self) -> dict:
        return {
            "name_or_path": self.name_or_path,
            "config_hash": self.config_hash,
            "weights_hash": self.weights_hash,
            "architecture": self.architecture,
        }


def config_hash(config: dict) -> str:
    """sha256 of ``config.to_dict()`` without fields that change between loads of the same model."""
    clean = {k: v for k, v in config.items() if k not in _VOLATILE_CONFIG_KEYS and not k.startswith("_")}
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()


def files_hash(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def hub_hint() -> str:
    """Why a hub id may not load here: offline by choice, or no network."""
    import os

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set: unset it to download from the hub"
    return "the hub could not be reached, or has no such model"


def resolve_base(spec: str, *, progress: bool = True) -> BaseRef:
    """Build the embedded base if asked for it; fetch a known real model; hash a local dir; accept a
    hub id as is."""
    from lorareuse_plugin.base.importer import KNOWN

    if spec in EMBEDDED:
        from lorareuse_plugin.base.build import build_base

        path, _ = build_base(spec, progress=progress)
        spec = str(path)
    elif spec in KNOWN:
        from lorareuse_plugin.base.importer import fetch

        spec = str(fetch(spec, log=print if progress else (lambda _m: None)))
    path = Path(spec).expanduser()
    if path.exists():
        cfg_file = path / "config.json"
        if not cfg_file.exists():
            raise ConfigError(f"base {path} has no config.json: pass an HF model directory (save_pretrained)")
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path).to_dict()  # full dict: same hash as a loaded model's
        weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
        if not weights:
            raise ConfigError(f"base {path} has no weight files (*.safetensors / *.bin)")
        arch = (config.get("architectures") or [config.get("model_type", "unknown")])[0]
        return BaseRef(str(path.resolve()), config_hash(config), files_hash(weights), arch)
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(spec).to_dict()
    except Exception as e:  # hub unreachable, typo, private repo …
        raise ConfigError(
            f"base {spec!r} is neither a local model dir nor a loadable hub id ({type(e).__name__}; {hub_hint()}): "
            "pass a model dir, 'default', or a real model from `lorareuse base fetch smollm2`"
        ) from None
    arch = (config.get("architectures") or [config.get("model_type", "unknown")])[0]
    return BaseRef(spec, config_hash(config), None, arch)
