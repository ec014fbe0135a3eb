"""``lorareuse-hf``: lm-eval's HF model with a reuse spec applied.

- averaged methods and ``single:<expert>`` are merged into the weights (no adapter overhead);
- ``oracle`` / ``seq_arrow`` / ``random_route`` route per request (``reuse.router``): requests are
  bucketed by adapter and each bucket is served by ``set_adapter`` + lm-eval's own code path (one switch per bucket);
- ``arrow`` routes per token inside PEFT's Arrow layers.
Every request's expert is recorded (``route_log``) and ``get_model_info()`` carries the full spec,
the library manifest hash and a per-task summary of who served what.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.models.adapter_check import assert_changed, check_wanted, last_logits, probe_prompts
from lorareuse_plugin.models.args import (
    STACKING_ARGS,
    check_method_given,
    check_model_arg_keys,
    default_device,
    method_parameters,
)
from lorareuse_plugin.models.routing import RoutedMixin
from lorareuse_plugin.reuse.registry import get_method
from lorareuse_plugin.reuse.spec import ReuseSpec, parse_spec

_PEFT_PREFIX = "base_model.model."
_LATEST: list = []  # the most recently built instance, for our CLI's samples annotation


def missing_source(backend: str) -> ConfigError:
    """The one line for model_args that name no adapters at all."""
    return ConfigError(
        f"{backend} needs library=<dir> (built by `lorareuse library build`, or a folder of PEFT LoRA dirs) "
        "or adapters=NAME:PATH+NAME:PATH"
    )


def latest_instance():
    return _LATEST[0]() if _LATEST else None


def spec_from_model_args(model_args: dict[str, Any]) -> ReuseSpec:
    """The spec a ``--model_args`` dict describes (without loading any model)."""
    args = dict(model_args)
    if not args.get("library") and not args.get("adapters"):
        raise missing_source("lorareuse-hf")
    method = args.pop("method", None)
    check_method_given("lorareuse-hf", method)
    method = str(method)
    params = split_reuse_kwargs(method, args)
    return parse_spec(
        args.get("library"), method, args.get("experts"), args.get("weights"), adapters=args.get("adapters"), **params
    )


def split_reuse_kwargs(method: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the method's own parameters out of ``kwargs``; refuse other methods' parameters."""
    info = get_method(str(method).split(":")[0])
    own = {f.name for f in dataclasses.fields(info.params_cls)}
    params = {k: kwargs.pop(k) for k in list(kwargs) if k in own}
    every = method_parameters()
    stray = sorted(k for k in kwargs if k in every)
    if stray:
        allowed = ", ".join(sorted(own)) or "none"
        raise ConfigError(f"method {info.name} has no parameter {', '.join(stray)}; its parameters: {allowed}")
    return params


def check_base_matches(pretrained: Any, manifest_base: dict) -> None:
    """The library's experts only mean something on the base they were trained on."""
    from transformers import AutoConfig, PreTrainedModel

    from lorareuse_plugin.base.resolve import config_hash

    if isinstance(pretrained, PreTrainedModel):
        config = pretrained.config.to_dict()
    else:
        try:
            config = AutoConfig.from_pretrained(pretrained).to_dict()
        except Exception as e:  # missing dir, no config.json, unreachable hub id
            raise ConfigError(
                f"pretrained={pretrained} can't be loaded ({type(e).__name__}): pass the library's base "
                f"{manifest_base['name_or_path']} or leave pretrained= out"
            ) from None
    if config_hash(config) != manifest_base["config_hash"]:
        given = getattr(pretrained, "name_or_path", pretrained)
        raise ConfigError(
            f"the library was built for base {manifest_base['name_or_path']} (config "
            f"{manifest_base['config_hash'][:12]}), not for {given}: pass that base as pretrained= or rebuild "
            "the library on this one"
        )


def resolve_pretrained(library: Any, pretrained: Any, who: str, flag: str) -> Any:
    """The base to load: the one given (checked against the config hash the library records, when it
    records one), else the library's own base or the adapters' common ``base_model_name_or_path``."""
    base = library.base
    if pretrained is None:
        if base is None:
            raise ConfigError(
                f"{who}: {library.describe()} names no common base (base_model_name_or_path differs or is "
                f"empty): pass {flag}<the base the adapters were trained on>"
            )
        pretrained = base["name_or_path"]
    if base is not None and base.get("config_hash"):
        check_base_matches(pretrained, base)
    return pretrained


def resolve_spec(
    backend: str,
    pretrained: Any,
    library: Any,
    method: str,
    experts: Any,
    weights: Any,
    kwargs: dict[str, Any],
    refuse: dict[str, str] | None = None,
    adapters: Any = None,
) -> tuple[ReuseSpec, Any]:
    """Validate a backend's model_args before anything loads: the spec (its method parameters popped
    from ``kwargs``), methods the backend ``refuse``s, and the base it must run on."""
    if not library and not adapters:
        raise missing_source(backend)
    check_method_given(backend, method)
    stacked = [f"{k}=" for k in STACKING_ARGS if kwargs.get(k)]
    if stacked:
        raise ConfigError(
            f"{backend}: {' and '.join(stacked)} cannot be combined with method={method}: that adapter would be "
            "stacked silently under the reuse spec; drop it, or serve one adapter as method=single:<expert>"
        )
    params = split_reuse_kwargs(method, kwargs)
    check_model_arg_keys(backend, kwargs)
    spec = parse_spec(library, method, experts, weights, adapters=adapters, **params)
    if refuse and spec.method.name in refuse:
        raise ConfigError(refuse[spec.method.name])
    pretrained = resolve_pretrained(spec.library, pretrained, backend, "pretrained=")
    from lorareuse_plugin.reuse.lora_io import check_fits_base

    check_fits_base(spec, pretrained)  # an expert dir trained on another base, before PEFT's size-mismatch dump
    return spec, pretrained


@register_model("lorareuse-hf")
class LorareuseHFLM(RoutedMixin, HFLM):
    BACKEND = "hf"

    def __init__(
        self,
        pretrained: Any = None,
        library: str | None = None,
        method: str | None = None,
        experts: Any = None,
        weights: Any = None,
        check_adapters: bool = True,
        adapters: Any = None,
        **kwargs: Any,
    ) -> None:
        check = check_wanted(check_adapters)  # before anything loads
        self.reuse_spec, pretrained = resolve_spec(
            "lorareuse-hf", pretrained, library, method, experts, weights, kwargs, adapters=adapters
        )
        kwargs["device"] = default_device(kwargs.get("device"))
        super().__init__(pretrained=pretrained, **kwargs)
        self.route_log: dict[tuple[str, int], str] = {}
        self._router = None
        self._chain = False
        self._selector = None  # rescore: picks one candidate answer per request
        self._ensemble: tuple | None = None  # (experts, weights) when the outputs are mixed
        self._served = self.reuse_spec.label
        self._extra_info: dict[str, Any] = {}
        self._apply(check)
        import weakref

        _LATEST[:] = [weakref.ref(self)]

    # ---- building the served model -------------------------------------------------------------
    def _apply(self, check: bool) -> None:
        spec = self.reuse_spec
        name, kind = spec.method.name, spec.method.kind
        if name == "base":
            return
        prompts = probe_prompts(spec)
        before = last_logits(self._model, self.tokenizer, prompts) if check else None
        if kind == "average" or name == "single":
            from peft import PeftModel

            from lorareuse_plugin.reuse.merge import merge_stats, merged_adapter

            path = merged_adapter(spec)
            peft_model = PeftModel.from_pretrained(self._model, str(path), adapter_name="merged")
            if check:
                self._extra_info["adapter_check_max_dlogit"] = assert_changed(
                    before, last_logits(peft_model, self.tokenizer, prompts), f"adapter {spec.label}"
                )
            self._model = peft_model.merge_and_unload()
            self._extra_info["merged_adapter"] = str(path)
            self._extra_info["merge_stats"] = merge_stats(path)
        elif name == "arrow":
            from lorareuse_plugin.reuse import arrow

            self._model = arrow.build(self._model, spec)
            if check:
                self._extra_info["adapter_check_max_dlogit"] = assert_changed(
                    before, last_logits(self._model, self.tokenizer, prompts), f"arrow over {'+'.join(spec.experts)}"
                )
        else:  # every expert loaded as a named adapter, none merged
            self._model = self._load_experts(spec, before, prompts, check)
            if kind == "ensemble":  # _model_call mixes their distributions
                self._ensemble = (spec.experts, spec.weights)
            elif kind == "chain":  # ``RoutedMixin._chain_dispatch`` asks them in turn
                self._chain = True
            elif kind == "rescore":  # ``RoutedMixin._rescore_dispatch`` lets the rescorer pick
                from lorareuse_plugin.reuse.rescore import Selector

                self._selector = Selector(spec.params)
            else:
                self._router = spec.method.load().request_router(spec, self._scorer_factory(spec))
        self._model.eval()

    def _scorer_factory(self, spec):
        """Builds seq_arrow's scorer on the base (adapters disabled), for the routers that need one."""

        def scorer():
            from lorareuse_plugin.reuse.seq_arrow import SeqArrowScorer

            return SeqArrowScorer(
                spec,
                self._model,
                self.tokenizer,
                prefix=_PEFT_PREFIX,
                base_context=self._model.disable_adapter,
                batch_size=self.batch_size if isinstance(self.batch_size, int) else 16,  # "auto" -> 16
                max_length=self.max_length,  # lm-eval truncates contexts to this: score the same tokens
            )

        return scorer

    def _load_experts(self, spec, before, prompts, check):
        from peft import PeftModel

        first, *rest = spec.experts
        model = PeftModel.from_pretrained(self._model, str(spec.library.expert_dir(first)), adapter_name=first)
        for e in rest:
            model.load_adapter(str(spec.library.expert_dir(e)), adapter_name=e)
        changes = {}
        for e in spec.experts:
            model.set_adapter(e)
            if check:
                changes[e] = assert_changed(before, last_logits(model, self.tokenizer, prompts), f"expert {e}")
        if changes:
            self._extra_info["adapter_check_max_dlogit"] = changes
        from peft.tuners.lora import LoraLayer

        # the base weights of every adapted layer, to restore exactly after each bucket is served merged
        self._base_weights = [
            (m, m.get_base_layer().weight.detach().clone()) for m in model.modules() if isinstance(m, LoraLayer)
        ]
        return model

    def _model_call(self, inps, attn_mask=None, labels=None):
        if self._ensemble is None:
            return super()._model_call(inps, attn_mask, labels)
        from lorareuse_plugin.reuse.ensemble import mixture_logprobs

        return mixture_logprobs(self._model, *self._ensemble, inps)  # log-probs: lm-eval's log_softmax keeps them

    def _model_generate(self, context, max_length, stop, **generation_kwargs):
        if self._ensemble is None:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        from lm_eval.models.utils_hf import stop_sequences_criteria

        from lorareuse_plugin.reuse.ensemble import greedy

        if generation_kwargs.get("do_sample") or generation_kwargs.get("temperature", 0.0) not in (0, 0.0, None):
            raise ConfigError("ensemble decodes greedily: drop do_sample/temperature from the task's generation_kwargs")
        criteria = stop_sequences_criteria(self.tokenizer, stop, context.shape[1], context.shape[0])
        return greedy(
            self._model,
            *self._ensemble,
            context,
            max_length,
            criteria,
            self.tokenizer.eos_token_id,
            self.tokenizer.pad_token_id,
            attention_mask=generation_kwargs.get("attention_mask"),
        )

    def _load_mixture(self, name: str, path) -> None:
        self._model.load_adapter(str(path), adapter_name=name)

    def _serving(self, adapter: str | None):
        if adapter is None:
            return self._model.disable_adapter()
        return self._merged(adapter)

    @contextlib.contextmanager
    def _merged(self, adapter: str):
        """Serve one bucket with its adapter merged into the weights (base-model speed; unmerged LoRA
        layers cost ~20 % on small models), then put the saved base weights back bit for bit —
        PEFT's ``unmerge`` subtracts, and would drift over many buckets. The adapter is made the only
        active one first (before merging: PEFT unmerges on ``set_adapter``): a layer it does not
        adapt then adds nothing, instead of the LoRA of whichever expert was active."""
        import torch

        self._model.set_adapter(adapter)
        with torch.no_grad():
            for layer, _ in self._base_weights:
                if adapter in layer.lora_A:
                    layer.merge(adapter_names=[adapter])
        try:
            yield
        finally:
            with torch.no_grad():
                for layer, weight in self._base_weights:
                    if layer.merged_adapters:
                        layer.get_base_layer().weight.copy_(weight)
                        layer.merged_adapters.clear()
