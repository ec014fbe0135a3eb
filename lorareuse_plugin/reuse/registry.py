"""Every reuse method by name: a new method is one module plus one entry here.

Modules load lazily (``importlib``) so listing methods never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from types import ModuleType

from lorareuse_plugin.errors import ConfigError

# kinds whose experts are served apart, never as one merged adapter: what each is called in messages
SERVED_APART = {"route": "routing", "chain": "chaining", "ensemble": "output-mixing", "rescore": "rescoring"}


@dataclass(frozen=True)
class MethodInfo:
    name: str
    kind: str  # "average" (writes a PEFT adapter) | "route" | "chain" | "ensemble" | "rescore" | "baseline"
    module: str
    summary: str
    backends: tuple[str, ...] = ("hf", "vllm")

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    @property
    def writes_adapter(self) -> bool:
        """Whether the method's result is one merged PEFT adapter (``merge``, ``serve --merge``)."""
        return self.kind not in SERVED_APART

    @property
    def params_cls(self) -> type:
        return self.load().Params

    @property
    def code_sha256(self) -> str:
        """Hash of the method's source and of the ``reuse`` modules it imports (read, not imported),
        so every cache keyed by it is invalidated when the method's code changes."""
        return _code_hash(self.module)


def _code_hash(module: str) -> str:
    import hashlib
    import importlib.util
    import re
    from pathlib import Path

    sources: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in sources:
            continue
        spec = importlib.util.find_spec(name)
        sources[name] = Path(spec.origin).read_text() if spec and spec.origin else ""
        todo += re.findall(r"lorareuse_plugin\.reuse\.\w+", sources[name])
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(f"{name}\0{sources[name]}\0".encode())
    return digest.hexdigest()


_P = "lorareuse_plugin.reuse."
METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in (
        MethodInfo("base", "baseline", _P + "baselines", "the base model, no adapter"),
        MethodInfo("single", "baseline", _P + "baselines", "one expert alone (method=single:<expert>)"),
        MethodInfo("delta_mean", "average", _P + "delta_mean", "exact weighted mean of ΔW (rank concatenation)"),
        MethodInfo("factor_mean", "average", _P + "factor_mean", "mean of A's and of B's (MTTL/LoraHub uniform)"),
        MethodInfo("svd", "average", _P + "svd", "best rank-r approximation of the delta mean"),
        MethodInfo("ties", "average", _P + "ties", "TIES in delta space, then rank-r SVD"),
        MethodInfo("dare", "average", _P + "dare", "DARE in delta space (seeded), then rank-r SVD"),
        MethodInfo("task_arithmetic", "average", _P + "task_arithmetic", "Σ λ·ΔW_i, exact (lambda=1: the sum)"),
        MethodInfo("arrow", "route", _P + "arrow", "per-token, per-layer top-k Arrow routing", ("hf",)),
        MethodInfo("seq_arrow", "route", _P + "seq_arrow", "one expert (or top-k mix) per request"),
        MethodInfo("ensemble", "ensemble", _P + "ensemble", "mean of the experts' next-token distributions", ("hf",)),
        MethodInfo("chain", "chain", _P + "chain", "ask member 1 its question, its answer into member 2's"),
        MethodInfo(
            "rescore", "rescore", _P + "rescore", "the rescorer picks one expert's (or the mean's) answer", ("hf",)
        ),
        MethodInfo("random_route", "route", _P + "random_route", "a seeded uniform random expert per request"),
        MethodInfo("oracle", "route", _P + "oracle", "route by task name to the expert trained for it"),
    )
}


def averaging_names() -> str:
    """The methods that write a merged adapter, for messages."""
    return ", ".join(m.name for m in METHODS.values() if m.kind == "average")


def get_method(name: str) -> MethodInfo:
    try:
        return METHODS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown method {name!r}{hint}: use one of {', '.join(METHODS)}") from None
