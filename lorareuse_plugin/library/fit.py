"""Does an adapter fit a base? Compared on shapes: a LoRA trained on another base (a swapped or
foreign dir) is refused in one line instead of failing inside PEFT with a size-mismatch dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorareuse_plugin.errors import LibraryError
from lorareuse_plugin.library.adapter import FOREIGN_FIX, LORA_KEY, weight_header

_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


def adapter_shapes(path: str | Path, fix: str = FOREIGN_FIX) -> dict[str, tuple[int, int]]:
    """(out, in) of every module an adapter touches, from the safetensors header alone (no tensor is read)."""
    dims: dict[str, list] = {}
    for key, (shape, _) in weight_header(Path(path), fix).items():
        m = LORA_KEY.match(key)
        if m and len(shape) == 2:  # anything else is reported by read_adapter_info
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


def checkpoint_shapes(model_dir: Path) -> dict[str, tuple[int, int]]:
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


def base_shapes(pretrained: Any) -> tuple[dict[str, tuple[int, int]], bool] | None:
    """(layer shapes, loaded?) of a loaded model or a local safetensors dir; None when there is nothing
    to compare with (a hub id, ``.bin`` weights, an unreadable checkpoint: the backend reports those)."""
    if hasattr(pretrained, "named_modules"):
        return linear_shapes(pretrained), True
    model_dir = Path(str(pretrained)).expanduser()
    try:
        shapes = checkpoint_shapes(model_dir) if model_dir.is_dir() else {}
    except Exception:  # an unreadable checkpoint is the backend's to report
        shapes = {}
    return (shapes, False) if shapes else None


def check_fits(what: str, path: Path, shapes: dict, loaded: bool, given: Any, fix: str) -> None:
    for module, shape in adapter_shapes(path).items():
        have = shapes.get(module)
        if have is None and not loaded:
            continue  # checkpoint keys may carry another prefix than the loaded modules: no verdict
        if have not in (shape, shape[::-1]):  # GPT-2 style Conv1D checkpoints store (in, out)
            found = f"has no layer {module}" if have is None else f"has {module} as {have}"
            raise LibraryError(
                f"{what} ({path}) was trained on another base: it adapts {module} as {shape} but base "
                f"{given} {found}; {fix}"
            )
