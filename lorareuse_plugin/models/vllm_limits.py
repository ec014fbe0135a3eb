"""vLLM's LoRA limits, importable without vLLM (``lorareuse serve`` plans before vLLM loads)."""

from __future__ import annotations

from typing import Any

from lorareuse_plugin.errors import ConfigError

ALLOWED_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def engine_rank(needed: int, asked: Any = None) -> int:
    """The smallest allowed ``max_lora_rank`` covering ``needed``; an explicit one must cover it."""
    if asked is not None:
        asked = int(asked)
        if asked not in ALLOWED_RANKS:
            raise ConfigError(f"max_lora_rank={asked} is not one vLLM allows: use one of {ALLOWED_RANKS}")
        if asked < needed:
            raise ConfigError(
                f"an adapter of rank {needed} exceeds max_lora_rank={asked}: raise max_lora_rank "
                "or compress the merge with method=svd,rank=<r>"
            )
        return asked
    for r in ALLOWED_RANKS:
        if r >= needed:
            return r
    raise ConfigError(f"adapter rank {needed} exceeds vLLM's largest max_lora_rank 512: use method=svd,rank=<r>")
