"""lm-eval models: ``lorareuse-hf`` (HF + PEFT) and, later, ``lorareuse-vllm``.

lm-eval has no model plugin entry point, so ``register_models()`` adds lazy registry entries
(``"module:Class"``, imported on first use) — our CLI calls it; Python users call it themselves.
"""

from __future__ import annotations

MODELS = {
    "lorareuse-hf": "lorareuse_plugin.models.hf:LorareuseHFLM",
    "lorareuse-vllm": "lorareuse_plugin.models.vllm:LorareuseVLLM",  # imported only when used
}


def register_models() -> None:
    """Idempotent. Imports ``lm_eval.models`` first: registering into an empty registry would
    stop lm-eval from loading its own models (``hf`` would vanish)."""
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    for alias, target in MODELS.items():
        if alias not in model_registry:
            model_registry.register(alias, target=target)
