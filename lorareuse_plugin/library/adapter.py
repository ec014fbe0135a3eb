"""One PEFT LoRA adapter as a value read from its own files: ``adapter_config.json`` and the
safetensors header (ranks per module, alpha, targets, rsLoRA, dtype, base id, hashes).

Every source of adapters (our manifest, a plain folder of PEFT dirs, ``adapters=NAME:PATH+…``)
yields these, so merges, routers, checks and backends never read ranks or targets from a
manifest that could disagree with the weights. What cannot be reused exactly is refused here, in
one line, before anything is loaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lorareuse_plugin.errors import LibraryError
from lorareuse_plugin.io import file_sha256

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_FILES = (CONFIG_FILE, WEIGHTS_FILE)
# tensor keys PEFT writes for LoRA: [base_model.model.]<module>.lora_A|lora_B[.<adapter>].weight
LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")
# LoRA variants whose delta is not B @ A on the unchanged base, or that change more than the delta
_UNSUPPORTED = {"use_dora": "DoRA", "lora_bias": "lora_bias", "use_qalora": "QA-LoRA", "use_bdlora": "BD-LoRA"}
# initialisations that rewrite the base weights (the residual model is not the base we serve)
_BASE_MODIFYING_INIT = ("pissa", "olora", "corda", "loftq")


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter dir holds, read from the files themselves."""

    name: str
    path: Path
    files: dict[str, str]  # file name -> sha256
    ranks: dict[str, int]  # module -> rank, from the weights
    alpha: float  # lora_alpha (patterns resolved per module by ``scaling``)
    targets: tuple[str, ...]  # module name suffixes the weights adapt (q_proj, …)
    use_rslora: bool
    dtype: str  # safetensors dtype of the LoRA tensors
    base_model_name_or_path: str
    config: dict

    @property
    def weights_sha256(self) -> str:
        return self.files[WEIGHTS_FILE]

    @property
    def rank(self) -> int:
        """The largest rank of any module (what a server must be able to hold)."""
        return max(self.ranks.values())

    def scaling(self, module: str) -> float:
        """PEFT's per-module scale: alpha/r (or alpha/sqrt(r) with rsLoRA), patterns resolved as PEFT does."""
        r = pattern_value(self.config.get("rank_pattern") or {}, module, self.config["r"], self.path)
        alpha = pattern_value(self.config.get("alpha_pattern") or {}, module, self.config["lora_alpha"], self.path)
        return alpha / (r**0.5 if self.use_rslora else r)

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "files": dict(self.files),
            "weights_sha256": self.weights_sha256,
            "rank": self.rank,
            "ranks": sorted(set(self.ranks.values())),
            "alpha": self.alpha,
            "targets": list(self.targets),
            "use_rslora": self.use_rslora,
            "dtype": self.dtype,
            "base_model_name_or_path": self.base_model_name_or_path,
        }


def pattern_value(patterns: dict, module: str, default, path: Path | str = ""):
    """``rank_pattern``/``alpha_pattern`` lookup with PEFT's own rule (``peft.utils.other.get_pattern_key``):
    the first key ``k`` with ``re.match(rf"(.*\\.)?({k})$", module)`` wins; otherwise ``default``. So
    ``q_proj|v_proj`` and ``layers\\.0\\.self_attn\\.q_proj`` match as they do in PEFT."""
    for key in patterns:
        try:
            hit = re.match(rf"(.*\.)?({key})$", module)
        except re.error as e:
            raise LibraryError(
                f"adapter {path}: pattern {key!r} in adapter_config.json is not a valid regex ({e}); fix the pattern"
            ) from None
        if hit:
            return patterns[key]
    return default


FOREIGN_FIX = "pass a PEFT LoRA adapter directory"
OURS_FIX = "rebuild the expert with `lorareuse library build`"


def read_config(path: Path, fix: str = FOREIGN_FIX) -> dict:
    """``adapter_config.json`` of a plain LoRA; every unsupported kind is one line naming the fix
    (``fix``: what to do about a missing or corrupt file, which depends on where the adapter came from)."""
    cfg_file = path / CONFIG_FILE
    for f in (cfg_file, path / WEIGHTS_FILE):
        if not f.is_file():
            raise LibraryError(f"adapter {path}: {f.name} is missing; {fix}")
    try:
        cfg = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LibraryError(f"adapter {path}: {CONFIG_FILE} is not valid JSON; {fix}") from None
    if not isinstance(cfg, dict) or cfg.get("peft_type") != "LORA":
        peft_type = cfg.get("peft_type") if isinstance(cfg, dict) else None
        raise LibraryError(f"adapter {path}: peft_type {peft_type!r} is not LORA; pass a PEFT LoRA adapter directory")
    for key, what in _UNSUPPORTED.items():
        if cfg.get(key):
            raise LibraryError(f"adapter {path}: {what} adapters can't be merged exactly; use plain LoRA")
    init = cfg.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(_BASE_MODIFYING_INIT):
        raise LibraryError(
            f"adapter {path}: init_lora_weights={init!r} rewrites the base weights (its delta only holds on that "
            "residual base, not on the base we serve); use a LoRA initialised with init_lora_weights=true/gaussian"
        )
    if cfg.get("target_parameters"):
        raise LibraryError(
            f"adapter {path}: target_parameters (LoRA on raw parameters, e.g. MoE experts) is not supported; "
            "use a LoRA on linear modules (target_modules)"
        )
    if cfg.get("bias", "none") != "none" or cfg.get("modules_to_save") or cfg.get("trainable_token_indices"):
        raise LibraryError(f"adapter {path}: bias/modules_to_save/trainable tokens are not supported; use plain LoRA")
    if cfg.get("layer_replication"):
        raise LibraryError(f"adapter {path}: layer_replication changes the base's layers; use plain LoRA")
    r0, alpha0 = cfg.get("r"), cfg.get("lora_alpha")
    if not isinstance(r0, int) or isinstance(r0, bool) or not isinstance(alpha0, int | float) or r0 < 1:
        raise LibraryError(f"adapter {path}: {CONFIG_FILE} lacks a valid r/lora_alpha; {fix}")
    for key in ("rank_pattern", "alpha_pattern"):
        if cfg.get(key) is not None and not isinstance(cfg[key], dict):
            raise LibraryError(f"adapter {path}: {key} in {CONFIG_FILE} is not a mapping; fix the config")
        for pattern in cfg.get(key) or {}:
            pattern_value({pattern: None}, "", None, path)  # an invalid regex fails here, in one line
    return cfg


def weight_header(path: Path, fix: str = FOREIGN_FIX) -> dict[str, tuple[tuple[int, ...], str]]:
    """key -> (shape, dtype) from the safetensors header alone (no tensor is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path / WEIGHTS_FILE), framework="pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except Exception as e:  # truncated, not safetensors
        raise LibraryError(f"adapter {path}: {WEIGHTS_FILE} is unreadable ({type(e).__name__}); {fix}") from None


def module_ranks(path: Path, header: dict, cfg: dict, fix: str = FOREIGN_FIX) -> dict[str, int]:
    """module -> rank, checked: both factors present, shapes consistent, rank as the config says."""
    dims: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, (shape, _) in header.items():
        m = LORA_KEY.match(key)
        if not m:
            raise LibraryError(
                f"adapter {path}: unexpected tensor {key!r}; only lora_A/lora_B weights are supported (plain LoRA)"
            )
        dims.setdefault(m["module"], {})[m["ab"]] = shape
    if not dims:
        raise LibraryError(f"adapter {path}: holds no LoRA weights; {fix}")
    ranks = {}
    for module, ab in sorted(dims.items()):
        if set(ab) != {"A", "B"}:
            raise LibraryError(f"adapter {path}: module {module} lacks lora_{'B' if 'A' in ab else 'A'}; {fix}")
        a, b = ab["A"], ab["B"]
        if len(a) != 2 or len(b) != 2 or a[0] != b[1]:
            raise LibraryError(f"adapter {path}: module {module} has inconsistent shapes A{a} B{b}; {fix}")
        want = pattern_value(cfg.get("rank_pattern") or {}, module, cfg["r"], path)
        if want != a[0]:
            raise LibraryError(
                f"adapter {path}: module {module} has rank {a[0]} but the config says {want} "
                f"(r/rank_pattern, matched as PEFT does); {fix}"
            )
        ranks[module] = a[0]
    return ranks


def read_adapter_info(
    name: str, path: str | Path, files: dict[str, str] | None = None, fix: str = FOREIGN_FIX
) -> AdapterInfo:
    """Read and check one adapter dir. ``files`` (known hashes, e.g. from a manifest that was just
    verified) saves hashing the files again."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise LibraryError(f"adapter {name}: {path} is not a directory; pass a PEFT LoRA adapter directory")
    cfg = read_config(path, fix)
    header = weight_header(path, fix)
    ranks = module_ranks(path, header, cfg, fix)
    dtypes = sorted({dtype for _, dtype in header.values()})
    return AdapterInfo(
        name=name,
        path=path,
        files=files or {f: file_sha256(path / f) for f in ADAPTER_FILES},
        ranks=ranks,
        alpha=float(cfg["lora_alpha"]),
        targets=tuple(sorted({m.rsplit(".", 1)[-1] for m in ranks})),
        use_rslora=bool(cfg.get("use_rslora")),
        dtype="+".join(dtypes),
        base_model_name_or_path=str(cfg.get("base_model_name_or_path") or ""),
        config=cfg,
    )
