"""Write averaged adapters: content-addressed, so the same merge is computed and written once.

``<cache>/merged/<spec key>/`` holds a plain PEFT LoRA adapter (loadable by PEFT, vLLM, LoRAX…)
plus ``lorareuse_merge.json`` with the spec and the method's statistics (rank, truncation error).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lorareuse_plugin.cache import cache_root
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.io import atomic_dir, check_out_dir
from lorareuse_plugin.reuse.lora_io import check_fits_base, read_experts, write_adapter
from lorareuse_plugin.reuse.spec import ReuseSpec

MARKER = "lorareuse_merge.json"


def merged_adapter(spec: ReuseSpec, out: Path | None = None) -> Path:
    """The adapter dir for an averaging (or ``single``) spec; built on first use."""
    if not spec.method.writes_adapter or spec.method.name == "base":
        from lorareuse_plugin.reuse.registry import averaging_names

        raise ConfigError(
            f"method {spec.method.name} does not produce a merged adapter: use an averaging method "
            f"({averaging_names()}) or single:<expert>"
        )
    if out is not None:
        check_out_dir(Path(out), MARKER)  # refuse a bad --out before any work
    path = cache_root() / "merged" / spec.key[:24]
    if not (path / MARKER).is_file():
        base = (spec.library.base or {}).get("name_or_path", "")
        if base:
            check_fits_base(spec, base)
        adapters = read_experts(spec.library, spec.experts)
        if spec.method.name == "single":
            factors, stats = adapters[0].modules, {"rank": next(iter(adapters[0].modules.values()))[0].shape[0]}
        else:
            result = spec.method.load().merge(adapters, list(spec.weights), spec.params)
            factors, stats = result.factors, result.stats
        from lorareuse_plugin.reuse.lora_io import LoraFactors

        with atomic_dir(path, MARKER) as tmp:
            write_adapter(tmp, LoraFactors(factors), base)
            (tmp / MARKER).write_text(json.dumps({"spec": spec.to_json(), "stats": stats}, indent=2) + "\n")
    if out is not None:
        with atomic_dir(Path(out), MARKER) as tmp:
            for f in path.iterdir():
                shutil.copy2(f, tmp / f.name)
        return Path(out).resolve()
    return path


def merge_stats(path: Path) -> dict:
    return json.loads((Path(path) / MARKER).read_text())["stats"]
