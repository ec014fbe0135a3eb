"""``lorareuse library import``: foreign PEFT LoRAs become a library with our provenance.

The adapter files are copied (so a later edit of the source cannot change what the library serves),
and the manifest records each source path, file hashes, ranks and targets read from the weights,
and the base's config and weights hashes — ``library verify`` and every backend then check them
exactly as they check a library we trained. An imported library has no world of ours: it runs on
any lm-eval task, not on the ladder's controls.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.io import atomic_dir, check_out_dir
from lorareuse_plugin.library.adapter import ADAPTER_FILES, WEIGHTS_FILE, read_adapter_info
from lorareuse_plugin.library.fit import base_shapes, check_fits
from lorareuse_plugin.library.manifest import FORMAT_VERSION, IMPORTED, write_manifest
from lorareuse_plugin.library.source import MANIFEST, check_name


def parse_pairs(pairs: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` arguments -> {name: path}."""
    out: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"{pair!r} is not NAME=PATH: name each adapter, e.g. hop1=/loras/hop1")
        name = check_name(name.strip(), "library import")
        if name in out:
            raise ConfigError(f"library import: {name!r} is named twice; give each adapter its own name")
        out[name] = Path(path.strip()).expanduser().resolve()
    if not out:
        raise ConfigError("library import needs at least one NAME=PATH")
    return out


def import_library(
    adapters: dict[str, Path], base: str | None, out: str | Path, log: Callable[[str], None] = print
) -> dict:
    """Check every adapter (LoRA kind, config vs weights, fits the base), then write the library
    atomically; return its manifest."""
    from lorareuse_plugin.base.resolve import resolve_base

    out = check_out_dir(Path(out), MANIFEST)
    infos = {name: read_adapter_info(name, path) for name, path in adapters.items()}
    if not base:
        named = {i.base_model_name_or_path for i in infos.values()}
        if len(named) != 1 or "" in named:
            raise ConfigError("the adapters name no common base (base_model_name_or_path): pass --base <model dir>")
        base = named.pop()
    ref = resolve_base(base, progress=False)
    found = base_shapes(ref.name_or_path)
    if found is not None:
        for name, info in infos.items():
            check_fits(
                f"adapter {name}", info.path, *found, ref.name_or_path, "pass the base it was trained on as --base"
            )
    experts = {}
    with atomic_dir(out, MANIFEST) as tmp:
        for name, info in infos.items():
            dest = tmp / "experts" / name
            dest.mkdir(parents=True)
            for f in ADAPTER_FILES:
                shutil.copy2(info.path / f, dest / f)
            experts[name] = {
                "path": f"experts/{name}",
                "source": str(info.path),
                "files": dict(info.files),
                "weights_hash": info.files[WEIGHTS_FILE],
                "rank": info.rank,
                "ranks": sorted(set(info.ranks.values())),
                "alpha": info.alpha,
                "use_rslora": info.use_rslora,
                "targets": list(info.targets),
                "dtype": info.dtype,
                "base_model_name_or_path": info.base_model_name_or_path,
                "contaminated": False,
            }
            log(f"  {name}: rank {info.rank}, {len(info.ranks)} modules ({', '.join(info.targets)}) from {info.path}")
        manifest = {
            "format_version": FORMAT_VERSION,
            "kind": IMPORTED,
            "library": out.name,
            "base": ref.to_json(),
            "experts": experts,
        }
        write_manifest(tmp, manifest)
    return manifest
