"""``seq_arrow``: Arrow's data-free prototypes, but one decision per request.

For each expert and LoRA module, v = top right-singular vector of ΔW. A request's score for an
expert is the mean over modules of the mean over prompt tokens of |x·v| (x = the module's input
on the *base* model). The top-k experts are used — one adapter (k=1) or their delta mean with
softmax(score/temperature) weights — so it runs unchanged on vLLM, where adapters are per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError


@dataclass(frozen=True)
class Params:
    top_k: int = field(default=1, metadata={"help": "experts per request (1..#experts)"})
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature of the top-k mix"})


def check_spec(spec) -> None:
    n = len(spec.experts)
    if not 1 <= spec.params.top_k <= n:
        raise ConfigError(f"{spec.method.name}: top_k={spec.params.top_k} is invalid for {n} experts: use 1..{n}")
    if spec.params.temperature <= 0:
        raise ConfigError(f"{spec.method.name}: temperature={spec.params.temperature} must be > 0")


def mix(scores: dict[str, float], top_k: int, temperature: float) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Top-k experts by score (ties by name) and their softmax weights, rounded so mixes cache."""
    import math

    ranked = sorted(scores, key=lambda e: (-scores[e], e))[:top_k]
    top = max(scores[e] for e in ranked)
    exps = [math.exp((scores[e] - top) / temperature) for e in ranked]
    total = sum(exps)
    weights = [round(x / total, 2) for x in exps]
    weights[-1] = round(1.0 - sum(weights[:-1]), 2)
    return tuple(ranked), tuple(weights)
