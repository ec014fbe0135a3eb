"""A run's name from what it is, not lm-eval's fallback.

lm-eval names a run's output folder and ``model_name`` after the first of ``peft``, ``delta``,
``pretrained``, … in model_args and otherwise after a random id (``hfout/i82qcls7/``): two runs of
one reuse spec landed in different folders, and no name said which method ran. Ours read
``<model>__<library>__<spec label>__<base>``, sanitized for paths and stable across runs.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any


def sanitized(name: str) -> str:
    """Letters, digits and ``._+=,-`` kept; every other run of characters becomes one ``_``."""
    return re.sub(r"[^A-Za-z0-9._+=,-]+", "_", name).strip("_")


def run_name(model: str, model_args: dict[str, Any]) -> tuple[str, str]:
    """(name, folder): ``lorareuse-hf__demo_twohop_f__delta_mean[hop1+hop2]__default`` and
    ``lorareuse-hf__demo_twohop_f__delta_mean_hop1+hop2__default`` for our models' model_args."""
    from lorareuse_plugin.models.hf import spec_from_model_args

    spec = spec_from_model_args(model_args)
    base = model_args.get("pretrained") or (spec.library.base or {}).get("name_or_path") or "base"
    parts = [model, spec.library.label, spec.label, PurePath(str(base).rstrip("/")).name or str(base)]
    parts = [p for p in parts if p]
    return "__".join(parts), "__".join(sanitized(p) for p in parts)
