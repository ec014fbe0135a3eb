"""Which modules of a base an expert's LoRA wraps.

A recipe names module suffixes (Llama-style ``q_proj`` … ``down_proj`` by default) or says
``all-linear`` (PEFT's keyword), which is resolved here, per base, to the suffixes of every linear
layer except the output head — never embeddings or ``lm_head``: vLLM cannot serve LoRA there the
way PEFT trains it. The resolved names go to PEFT, so the saved ``adapter_config.json`` lists real
module names that vLLM and ``serve`` read.
"""

from __future__ import annotations

ALL_LINEAR = "all-linear"
FORBIDDEN_TARGETS = ("lm_head", "embed_tokens", "wte", "wpe", "embed_in", "embed_out")
_LINEAR_TYPES = ("Linear", "Conv1D")  # torch's and GPT-2's


def linear_suffixes(model) -> tuple[str, ...]:
    """Suffixes of the model's linear layers that LoRA may wrap (sorted; no head, no embeddings)."""
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ in _LINEAR_TYPES}
    return tuple(sorted(names - set(FORBIDDEN_TARGETS)))


def resolve_targets(model, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The module suffixes to wrap on ``model``: ``targets`` as named, or ``all-linear`` resolved."""
    return linear_suffixes(model) if tuple(targets) == (ALL_LINEAR,) else tuple(targets)
