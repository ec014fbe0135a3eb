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
        raise LibraryError(
            f"adapter {path}: adapter_config.json is not valid JSON; rebuild the expert with `lorareuse library build`"
        ) from None
    if not isinstance(cfg, dict) or cfg.get("peft_type") != "LORA":
        peft_type = cfg.get("peft_type") if isinstance(cfg, dict) else None
        raise LibraryError(f"adapter {path}: peft_type {peft_type!r} is not LORA; pass a PEFT LoRA adapter directory")
    for key, what in _UNSUPPORTED.items():
        if cfg.get(key):
            raise LibraryError(f"adapter {path}: {what} adapters can't be merged exactly; use plain LoRA")
    if cfg.get("bias", "none") != "none" or cfg.get("modules_to_save"):
        raise LibraryError(f"adapter {path}: bias/modules_to_save are not supported; use plain LoRA")
    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as e:
        why = " ".join(str(e).split())
        raise LibraryError(
            f"adapter {path}: adapter_model.safetensors is unreadable ({why}); "
            "rebuild the expert with `lorareuse library build`"
        ) from None
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        m = _KEY.match(key)
        if not m:
            raise LibraryError(
                f"adapter {path}: unexpected tensor {key!r}; only lora_A/lora_B weights are supported (plain LoRA)"
            )
        parts.setdefault(m["module"], {})[m["ab"]] = t
    r0, alpha0 = cfg.get("r"), cfg.get("lora_alpha")
    if not isinstance(r0, int) or isinstance(r0, bool) or not isinstance(alpha0, int | float) or r0 < 1:
        raise LibraryError(
            f"adapter {path}: adapter_config.json lacks a valid r/lora_alpha; "
            "rebuild the expert with `lorareuse library build`"
        )
    modules = {}
    for module, ab in sorted(parts.items()):
        if set(ab) != {"A", "B"}:
            raise LibraryError(
                f"adapter {path}: module {module} lacks lora_{'B' if 'A' in ab else 'A'}; "
                "rebuild the expert with `lorareuse library build`"
            )
        a, b = ab["A"].float(), ab["B"].float()
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise LibraryError(
                f"adapter {path}: module {module} has inconsistent shapes A{tuple(a.shape)} B{tuple(b.shape)}; "
                "rebuild the expert with `lorareuse library build`"
            )
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise LibraryError(f"adapter {path}: module {module} holds NaN/inf weights; retrain the expert")
        r = _pattern_value(cfg.get("rank_pattern") or {}, module, r0)
        alpha = _pattern_value(cfg.get("alpha_pattern") or {}, module, alpha0)
        if r != a.shape[0]:
            raise LibraryError(
                f"adapter {path}: module {module} has rank {a.shape[0]} but the config says {r}; "
                "rebuild the expert with `lorareuse library build`"
            )
        scaling = alpha / (math.sqrt(r) if cfg.get("use_rslora") else r)
        modules[module] = (a, b * scaling)
    if not modules:
        raise LibraryError(f"adapter {path}: holds no LoRA weights; rebuild the expert with `lorareuse library build`")
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
                    f"experts disagree on the shape of {module}: {shapes[module]} vs {shape} (trained on different "
                    "bases?): rebuild the odd one out on the library's base with `lorareuse library build`"
                )
    return dict(sorted(shapes.items()))


def adapter_shapes(path: str | Path) -> dict[str, tuple[int, int]]:
    """(out, in) of every module an adapter touches, from the safetensors header alone (no tensor is read)."""
    from safetensors import safe_open

    weights_file = Path(path) / "adapter_model.safetensors"
    try:
        with safe_open(str(weights_file), framework="pt") as f:
            header = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # missing, truncated, not safetensors
        raise LibraryError(
            f"adapter {path}: adapter_model.safetensors is unreadable ({type(e).__name__}); "
            "rebuild the expert with `lorareuse library build`"
        ) from None
    dims: dict[str, list] = {}
    for key, shape in header.items():
        m = _KEY.match(key)
        if m and len(shape) == 2:  # anything else is reported by read_adapter
            d = dims.setdefault(m["module"], [None, None])
            d[1 if m["ab"] == "A" else 0] = shape[1] if m["ab"] == "A" else shape[0]
    return {k: (d[0], d[1]) for k, d in sorted(dims.items()) if None not in d}


def linear_shapes(model) -> dict[str, tuple[int, int]]:
    """(out, in) of every linear layer of an HF model (GPT-2 style ``Conv1D`` included)."""
    out = {}
    for name, mod in model.named_modules():
        if type(mod).__name__ == "Conv1D":
            out[name] = (mod.weight.shape[1], mod.weight.shape[0])
        elif isinstance(getattr(mod, "in_features", None), int) and isinstance(getattr(mod, "out_features", None), int):
            out[name] = (mod.out_features, mod.in_features)
    return out


_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


def _checkpoint_shapes(model_dir: Path) -> dict[str, tuple[int, int]]:
    """2-D float weights of a local safetensors checkpoint, from the file headers (cheap: no tensor, no
    transformers import). Quantised or other tensors are left out."""
    from safetensors import safe_open

    out = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(f), framework="np") as st:
            for key in st.keys():
                if not key.endswith(".weight"):
                    continue
                sl = st.get_slice(key)
                shape = tuple(sl.get_shape())
                if len(shape) == 2 and sl.get_dtype() in _FLOAT_DTYPES:
                    out[key.removesuffix(".weight")] = (shape[0], shape[1])
    return out


def check_fits_base(spec, pretrained) -> None:
    """Every chosen expert's LoRA must fit the base's layers: an adapter trained on another base (a swapped
    expert dir) is refused in one line instead of failing inside PEFT with a size-mismatch dump.

    ``pretrained`` is a loaded model (its linear layers) or a local model dir (its safetensors headers);
    anything else (a hub id, ``.bin`` weights) is left to the backend."""
    if not spec.experts:
        return
    loaded = hasattr(pretrained, "named_modules")
    if loaded:
        shapes = linear_shapes(pretrained)
    else:
        model_dir = Path(str(pretrained)).expanduser()
        try:
            shapes = _checkpoint_shapes(model_dir) if model_dir.is_dir() else {}
        except Exception:  # an unreadable checkpoint is the backend's to report
            shapes = {}
        if not shapes:
            return
    given = getattr(pretrained, "name_or_path", pretrained)
    for expert in spec.experts:
        path = spec.library.expert_dir(expert)
        for module, shape in adapter_shapes(path).items():
            have = shapes.get(module)
            if have is None and not loaded:
                continue  # checkpoint keys may carry another prefix than the loaded modules: no verdict
            if have not in (shape, shape[::-1]):  # GPT-2 style Conv1D checkpoints store (in, out)
                found = f"has no layer {module}" if have is None else f"has {module} as {have}"
                raise LibraryError(
                    f"expert {expert} ({path}) was trained on another base: it adapts {module} as {shape} but base "
                    f"{given} {found}; rebuild the expert on this base with `lorareuse library build`"
                )
