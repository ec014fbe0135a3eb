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

OUR_KEYS = ("pretrained", "library", "adapters", "method", "experts", "weights", "check_adapters")
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
