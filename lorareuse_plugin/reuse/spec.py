"""A reuse spec: (library, chosen experts, method, parameters, weights) — validated up front.

It is what a backend is asked to evaluate, what lands in ``get_model_info()`` and the results
JSON, and what keys every cache. Validation happens before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lorareuse_plugin
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.library.source import Library, open_library
from lorareuse_plugin.reuse.params import parse_params
from lorareuse_plugin.reuse.registry import MethodInfo, get_method

SPEC_VERSION = 1


@dataclass(frozen=True)
class ReuseSpec:
    library: Library
    experts: tuple[str, ...]
    method: MethodInfo
    params: Any  # the method's Params dataclass
    weights: tuple[float, ...]

    @property
    def label(self) -> str:
        if self.method.name == "base":
            return "base"
        if self.method.name == "single":
            return f"single:{self.experts[0]}"
        extra = ",".join(f"{k}={v}" for k, v in dataclasses.asdict(self.params).items() if v is not None)
        return f"{self.method.name}[{'+'.join(self.experts)}]" + (f"({extra})" if extra else "")

    def to_json(self) -> dict:
        return {
            "version": SPEC_VERSION,
            "library": str(self.library.root) if self.library.root else None,
            "library_name": self.library.label,
            **({} if self.library.kind == "manifest" else {"library_kind": self.library.kind}),  # ours: keys unchanged
            "manifest_sha256": self.library.identity_sha256,
            "experts": list(self.experts),
            # from the files, so a foreign dir edited in place is another spec
            "expert_weights_sha256": {e: self.library.adapter(e).weights_sha256 for e in self.experts},
            "method": self.method.name,
            "kind": self.method.kind,
            "params": dataclasses.asdict(self.params),
            "weights": list(self.weights),
            "label": self.label,
            "code": {"lorareuse": lorareuse_plugin.__version__, "method_sha256": self.method.code_sha256},
        }

    @property
    def key(self) -> str:
        blob = self.to_json()
        blob.pop("library")  # the same library moved elsewhere is the same spec
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _split_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value).replace("|", "+").replace(",", "+").split("+") if v.strip()]


def parse_spec(
    library: str | Path | Library | None,
    method: str,
    experts: Any = None,
    weights: Any = None,
    *,
    adapters: Any = None,
    **raw_params: Any,
) -> ReuseSpec:
    """``method`` may be ``single:<expert>``; ``experts`` ``hop1+hop2`` or a list; weights likewise.
    ``library`` is ours, a folder of PEFT dirs or a ``Library``; or ``adapters=NAME:PATH+…``."""
    lib = open_library(library, adapters)
    name, _, single = str(method).partition(":")
    info = get_method(name.strip())
    chosen = _split_list(experts)
    if info.name == "single":
        if not single and len(chosen) != 1:
            raise ConfigError("method single needs one expert: method=single:<expert>")
        chosen = [single.strip()] if single else chosen
    elif single:
        raise ConfigError(f"method {info.name} takes no ':<expert>' suffix; pass experts=a+b")
    if info.name == "base":
        if chosen:
            raise ConfigError(
                f"method base uses no experts, got {'+'.join(chosen)}: drop experts= (or use single:<expert>)"
            )
        chosen = []
    elif not chosen:
        chosen = list(lib.members)
    missing = [e for e in chosen if e not in lib.expert_names]
    if missing:
        raise ConfigError(
            f"expert(s) {', '.join(missing)} not in {lib.describe()}: it has {', '.join(lib.expert_names)}"
        )
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"experts list {'+'.join(chosen)} repeats an expert: name each expert once")
    params = parse_params(info.name, info.params_cls, raw_params)
    w = _weights(weights, len(chosen), info)
    check = getattr(info.load(), "check_spec", None)
    spec = ReuseSpec(lib, tuple(chosen), info, params, w)
    if check:
        check(spec)
    return spec


def _weights(raw: Any, n: int, info: MethodInfo) -> tuple[float, ...]:
    if n == 0:
        return ()
    values = _split_list(raw)
    if not values:
        return tuple([1.0 / n] * n)
    if info.kind not in ("average", "ensemble"):
        raise ConfigError(f"weights apply to averaging methods and ensemble only, not {info.name}: drop weights=")
    try:
        w = tuple(float(v) for v in values)
    except ValueError:
        raise ConfigError(f"weights {raw!r} must be numbers joined by '+', e.g. weights=0.7+0.3") from None
    if len(w) != n:
        raise ConfigError(f"{len(w)} weights for {n} experts: give one weight per expert")
    if not all(math.isfinite(x) for x in w):
        raise ConfigError(f"weights {raw!r} must be finite numbers, e.g. weights=0.7+0.3")
    if any(x < 0 for x in w):
        raise ConfigError(f"weights {raw!r} include a negative weight: use weights >= 0, e.g. weights=0.7+0.3")
    if sum(w) <= 0:
        raise ConfigError(f"weights {raw!r} sum to 0 (an all-zero adapter): give at least one expert a positive weight")
    return w
