"""Read PEFT LoRA adapters as per-module factors and write merged ones back as PEFT adapters.

Every factor pair is stored with its scaling folded into ``B`` (``ΔW = B @ A``), so methods never
have to care about ``lora_alpha``, ``r`` or rsLoRA again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lorareuse_plugin.errors import LibraryError
from lorareuse_plugin.library.adapter import FOREIGN_FIX, LORA_KEY, WEIGHTS_FILE, read_adapter_info

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from lorareuse_plugin.library.adapter import AdapterInfo
    from lorareuse_plugin.library.source import Library

_PREFIX = "base_model.model."


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


def read_adapter(path: str | Path, fix: str = FOREIGN_FIX) -> LoraFactors:
    """Load a PEFT LoRA dir as scaled factors; refuse what we can't merge exactly (checked on the
    config and header first by ``read_adapter_info``, then NaN/inf on the tensors). ``fix``: what to
    tell the user when a file is missing or corrupt (rebuild ours, or pass another dir)."""
    return load_factors(read_adapter_info(Path(path).name, path, fix=fix), fix)


def read_experts(library: Library, names: Sequence[str]) -> list[LoraFactors]:
    """The named experts' factors, from the ``AdapterInfo`` the library already read and checked
    (config, header, hashes) — the weights are loaded once, not re-read and re-hashed."""
    return [load_factors(library.adapter(name), library.fix) for name in names]


def load_factors(info: AdapterInfo, fix: str = FOREIGN_FIX) -> LoraFactors:
    """The tensors of an adapter whose config and header ``info`` already describes."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(info.path / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as e:
        why = " ".join(str(e).split())
        raise LibraryError(f"adapter {info.path}: {WEIGHTS_FILE} is unreadable ({why}); {fix}") from None
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        m = LORA_KEY.match(key)
        parts.setdefault(m["module"], {})[m["ab"]] = t  # every key matched: read_adapter_info checked
    modules = {}
    for module in info.ranks:
        a, b = parts[module]["A"].float(), parts[module]["B"].float()
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise LibraryError(f"adapter {info.path}: module {module} holds NaN/inf weights; retrain the expert")
        modules[module] = (a, b * info.scaling(module))
    return LoraFactors(modules, info.base_model_name_or_path, str(info.path))


def write_adapter(path: Path, factors: LoraFactors, base_model_name_or_path: str) -> None:
    """Write a plain PEFT LoRA adapter (scaling 1: ``lora_alpha = r``). Modules of lower rank are
    zero-padded to the largest rank — the same ΔW exactly — so the dir has one ``r`` that every
    loader (PEFT, vLLM, LoRAX) reads the same way, with no rank/alpha patterns to interpret."""
    import torch
    from safetensors.torch import save_file

    rank = max(a.shape[0] for a, _ in factors.modules.values())
    tensors = {}
    for module, (a, b) in factors.modules.items():
        pad = rank - a.shape[0]
        if pad:
            a = torch.cat([a, a.new_zeros(pad, a.shape[1])])
            b = torch.cat([b, b.new_zeros(b.shape[0], pad)], dim=1)
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
                    f"experts disagree on the shape of {module}: {shapes[module]} vs {shape} (trained on different "
                    "bases?): rebuild the odd one out on the library's base with `lorareuse library build`"
                )
    return dict(sorted(shapes.items()))


def check_fits_base(spec, pretrained) -> None:
    """Every chosen expert's LoRA must fit the base's layers (see ``library.fit``)."""
    from lorareuse_plugin.library.fit import base_shapes, check_fits

    found = base_shapes(pretrained) if spec.experts else None
    if found is None:
        return
    shapes, loaded = found
    given = getattr(pretrained, "name_or_path", pretrained)
    fix = (
        "rebuild the expert on this base with `lorareuse library build`"
        if spec.library.kind == "manifest"
        else "pass the base it was trained on as pretrained="
    )
    for expert in spec.experts:
        check_fits(f"expert {expert}", spec.library.expert_dir(expert), shapes, loaded, given, fix)
