"""The keys our lm-eval models take, checked before anything heavy is imported or loaded.

The backends' own keys are a snapshot of lm-eval 0.4.13's ``HFLM.__init__`` / ``VLLM.__init__``
parameters (a test compares them with the live signatures, so an lm-eval upgrade that changes them
fails loudly): checking a key must not cost the seconds that importing torch, transformers and
lm-eval's model modules take.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from lorareuse_plugin.errors import ConfigError

# key -> (default as the user sees it, what it does): `lorareuse methods --markdown` prints them
OUR_KEY_HELP = {
    "pretrained": ("the library's base", "the base model dir or hub id; checked against the base the library records"),
    "library": ("-", "a library dir (`lorareuse library build`) or a folder of PEFT LoRA dirs"),
    "adapters": ("-", "instead of library=: NAME:PATH+NAME:PATH, PEFT LoRA dirs by name"),
    "method": ("required", "the reuse method (table below), or single:<expert>"),
    "experts": ("every member", "experts joined with '+' (hop1+hop2); a comma separates model_args"),
    "weights": ("uniform", "one weight per expert, joined with '+' (averages, ensemble)"),
    "check_adapters": ("true", "check that every adapter changes the base's logits before scoring"),
}
OUR_KEYS = tuple(OUR_KEY_HELP)
# fmt: off
HF_KEYS = frozenset({
    "add_bos_token", "autogptq", "backend", "batch_size", "chat_template_args", "delta", "device", "dtype",
    "enable_thinking", "gguf_file", "gptqmodel", "logits_cache", "max_batch_size", "max_cpu_memory", "max_length",
    "max_memory_per_gpu", "mixed_precision_dtype", "offload_folder", "parallelize", "peft", "prefix_token_id",
    "pretrained", "revision", "softmax_dtype", "subfolder", "think_end_token", "tokenizer", "tp_plan", "truncation",
    "trust_remote_code", "use_fast_tokenizer",
})
VLLM_KEYS = frozenset({
    "add_bos_token", "batch_size", "chat_template_args", "data_parallel_size", "dtype", "enable_thinking",
    "lora_local_path", "max_batch_size", "max_gen_toks", "max_length", "max_lora_rank", "max_model_len",
    "prefix_token_id", "pretrained", "quantization", "revision", "seed", "tensor_parallel_size", "think_end_token",
    "tokenizer", "tokenizer_mode", "tokenizer_revision", "truncation_side", "trust_remote_code",
})
# fmt: on
# lm-eval's own adapter arguments (hf: peft, delta; vllm: lora_local_path): refused beside a reuse spec
STACKING_ARGS = ("peft", "delta", "lora_local_path")
BACKEND_KEYS = {"lorareuse-hf": HF_KEYS, "lorareuse-vllm": VLLM_KEYS}


def method_parameters() -> set[str]:
    """Every reuse method's parameter names (from the registry's parameter dataclasses)."""
    from lorareuse_plugin.reuse.registry import METHODS

    return {f.name for m in METHODS.values() for f in dataclasses.fields(m.params_cls)}


def check_model_arg_keys(backend: str, kwargs: dict[str, Any]) -> None:
    """A key that is neither ours, a method parameter nor the backend's own but is close to one of
    them is a typo: refuse it in one line (``metod=svd`` otherwise reached
    ``LlamaForCausalLM.__init__`` after the model loaded). Keys close to none pass on to the
    backend, which hands them to ``from_pretrained`` / vLLM as ever."""
    known = set(OUR_KEYS) | method_parameters() | BACKEND_KEYS.get(backend, frozenset())
    for key in kwargs:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)  # device_map is not device
        if close:
            raise ConfigError(
                f"{backend}: unknown model_args key {key!r}: did you mean {close[0]}=? "
                f"(our keys: {', '.join(OUR_KEYS)}; method parameters: `lorareuse methods`)"
            )


def check_method_given(backend: str, method: Any) -> None:
    """No silent default: a run without ``method=`` would put one method's scores under a spec that
    never named it, and a leaderboard compares methods by name."""
    if method is None or str(method).strip() == "":
        from lorareuse_plugin.reuse.registry import METHODS

        names = ", ".join(n for n in METHODS if n != "single")
        raise ConfigError(
            f"{backend}: method= is required: one of {names} or single:<expert> (`lorareuse methods` describes them)"
        )


def default_device(device: Any) -> str:
    """``device`` as given, else ``cuda`` where torch sees a GPU and ``cpu`` otherwise — from Python
    as from the CLI (lm-eval's HFLM defaults to ``cuda`` and dies on a CPU-only machine)."""
    if device not in (None, ""):
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
