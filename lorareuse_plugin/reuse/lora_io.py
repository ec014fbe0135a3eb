"""Read PEFT LoRA adapters as per-module factors and write merged ones back as PEFT adapters.

Every factor pair is stored with its scaling folded into ``B`` (``ΔW = B @ A``), so methods never
have to care about ``lora_alpha``, ``r`` or rsLoRA again.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lorareuse_plugin.errors import LibraryError

if TYPE_CHECKING:  # pragma: no cover
    import torch

_PREFIX = "base_model.model."
_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")
_UNSUPPORTED = {"use_dora": "DoRA", "lora_bias": "lora_bias", "use_qalora": "QA-LoRA", "use_bdlora": "BD-LoRA"}


@dataclass
class LoraFactors:
    """``modules[name] = (A [r, in], B_scaled [out, r])`` for one adapter."""

    modules: dict[str, tuple[torch.Tensor, torch.Tensor]]
    base_model_name_or_path: str = ""
    source: str = ""
    meta: dict = field(default_factory=dict)

    def delta(self, module: str) -> torch.Tensor:
        a, b = self.modules[module]
        return b @ a

    @property
    def targets(self) -> list[str]:
        return sorted({m.rsplit(".", 1)[-1] for m in self.modules})


def _pattern_value(patterns: dict, module: str, default):
    for key, value in patterns.items():
        if module == key or module.endswith("." + key) or re.fullmatch(key, module):
            return value
    return default


def read_adapter(path: str | Path) -> LoraFactors:
    """Load ``adapter_config.json`` + ``adapter_model.safetensors``; refuse what we can't merge exactly."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    cfg_file, weights_file = path / "adapter_config.json", path / "adapter_model.safetensors"
    for f in (cfg_file, weights_file):
        if not f.is_file():
            raise LibraryError(f"adapter {path}: {f.name} is missing; pass a PEFT LoRA adapter directory")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError:
        raise LibraryError(f"adapter {path}: adapter_config.json is not valid JSON") from None
    if cfg.get("peft_type") != "LORA":
        raise LibraryError(f"adapter {path}: peft_type {cfg.get('peft_type')!r} is not LORA")
    for key, what in _UNSUPPORTED.items():
        if cfg.get(key):
            raise LibraryError(f"adapter {path}: {what} adapters can't be merged exactly; use plain LoRA")
    if cfg.get("bias", "none") != "none" or cfg.get("modules_to_save"):
        raise LibraryError(f"adapter {path}: bias/modules_to_save are not supported; use plain LoRA")
    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as e:
        raise LibraryError(f"adapter {path}: adapter_model.safetensors is unreadable ({e}); rebuild it") from None
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        m = _KEY.match(key)
        if not m:
            raise LibraryError(f"adapter {path}: unexpected tensor {key!r}; only lora_A/lora_B weights are supported")
        parts.setdefault(m["module"], {})[m["ab"]] = t
    r0, alpha0 = cfg["r"], cfg["lora_alpha"]
    modules = {}
    for module, ab in sorted(parts.items()):
        if set(ab) != {"A", "B"}:
            raise LibraryError(f"adapter {path}: module {module} lacks lora_{'B' if 'A' in ab else 'A'}")
        a, b = ab["A"].float(), ab["B"].float()
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise LibraryError(
                f"adapter {path}: module {module} has inconsistent shapes A{tuple(a.shape)} B{tuple(b.shape)}"
            )
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise LibraryError(f"adapter {path}: module {module} holds NaN/inf weights; retrain the expert")
        r = _pattern_value(cfg.get("rank_pattern") or {}, module, r0)
        alpha = _pattern_value(cfg.get("alpha_pattern") or {}, module, alpha0)
        if r != a.shape[0]:
            raise LibraryError(f"adapter {path}: module {module} has rank {a.shape[0]} but the config says {r}")
        scaling = alpha / (math.sqrt(r) if cfg.get("use_rslora") else r)
        modules[module] = (a, b * scaling)
    if not modules:
        raise LibraryError(f"adapter {path}: holds no LoRA weights")
    return LoraFactors(modules, cfg.get("base_model_name_or_path") or "", str(path))


def write_adapter(path: Path, factors: LoraFactors, base_model_name_or_path: str) -> None:
    """Write a plain PEFT LoRA adapter (uniform rank ``R``, ``lora_alpha = R`` so scaling is 1)."""
    import torch
    from safetensors.torch import save_file

    ranks = {a.shape[0] for a, _ in factors.modules.values()}
    if len(ranks) != 1:
        raise ValueError(f"write_adapter needs one rank for every module, got {sorted(ranks)}")
    (rank,) = ranks
    tensors = {}
    for module, (a, b) in factors.modules.items():
        tensors[f"{_PREFIX}{module}.lora_A.weight"] = a.contiguous().to(torch.float32)
        tensors[f"{_PREFIX}{module}.lora_B.weight"] = b.contiguous().to(torch.float32)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name_or_path,
        "r": rank,
        "lora_alpha": rank,
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": factors.targets,
        "use_rslora": False,
        "use_dora": False,
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "rank_pattern": {},
        "alpha_pattern": {},
        "modules_to_save": None,
    }
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def module_shapes(adapters: list[LoraFactors]) -> dict[str, tuple[int, int]]:
    """(out, in) of every module any adapter touches; refuses experts that disagree on a shape."""
    shapes: dict[str, tuple[int, int]] = {}
    for ad in adapters:
        for module, (a, b) in ad.modules.items():
            shape = (b.shape[0], a.shape[1])
            if shapes.setdefault(module, shape) != shape:
                raise LibraryError(
                    f"experts disagree on the shape of {module}: {shapes[module]} vs {shape} "
                    "(trained on different bases?)"
                )
    return dict(sorted(shapes.items()))
