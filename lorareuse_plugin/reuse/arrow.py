"""``arrow``: per-token, per-layer routing (Ostapenko et al. 2024).

Every LoRA layer scores each token against each expert's prototype (|x·v|), keeps the top-k and
mixes their outputs with softmax(score/temperature). Prototypes are exact (SVD of the factors).
Two implementations of one computation: ``arrow_impl=fused`` (default, ``reuse/arrow_fused.py``:
factors stacked once, one projection into every expert's rank, no per-expert outputs) and
``arrow_impl=peft`` (``peft.create_arrow_model``, seeded, its power-iteration prototypes replaced by
the exact ones) for comparison. HF only: vLLM applies one adapter per request.

PEFT's Arrow (``arrow_impl=peft``) needs every expert at one rank on the same modules. Experts that differ (foreign
LoRAs often do) are served from plain copies padded with zeros — the same ΔW exactly — and an
expert that does not adapt a module gets a zero prototype there: it scores 0 (|x·0|), so top-1
routing picks an expert that adapts the module; with top_k ≥ 2 it can take a softmax share and
contribute nothing (documented, tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError


@dataclass(frozen=True)
class Params:
    top_k: int = field(default=1, metadata={"help": "experts per token (1..#experts)"})
    temperature: float = field(default=1.0, metadata={"help": "router softmax temperature"})
    seed: int = field(default=0, metadata={"help": "PEFT router seed (arrow_impl=peft)"})
    arrow_impl: str = field(default="fused", metadata={"help": "fused (ours, default) | peft (PEFT's Arrow layers)"})


IMPLS = ("fused", "peft")


def check_spec(spec) -> None:
    from lorareuse_plugin.reuse.seq_arrow import check_spec as check_top_k

    check_top_k(spec)
    if spec.params.arrow_impl not in IMPLS:
        raise ConfigError(f"arrow: arrow_impl={spec.params.arrow_impl!r} is unknown: use one of {', '.join(IMPLS)}")


def _uniform(spec) -> bool:
    """Every expert plain, at one rank, on the same modules: PEFT's Arrow can load the dirs as they are."""
    infos = [spec.library.adapter(e) for e in spec.experts]
    ranks = {r for a in infos for r in a.ranks.values()}
    modules = {tuple(sorted(a.ranks)) for a in infos}
    plain = all(
        not a.use_rslora and not a.config.get("rank_pattern") and not a.config.get("alpha_pattern") for a in infos
    )
    return len(ranks) == 1 and len(modules) == 1 and plain


def padded_dirs(spec) -> list[str]:
    """Plain copies of the experts at one rank on the union of their modules (zeros where an expert
    has no LoRA), content-addressed in the cache; the experts' own dirs when they already fit."""
    if _uniform(spec):
        return [str(spec.library.expert_dir(e)) for e in spec.experts]
    import hashlib
    import json

    from lorareuse_plugin.cache import cache_root
    from lorareuse_plugin.io import atomic_dir
    from lorareuse_plugin.reuse.lora_io import LoraFactors, module_shapes, read_experts, write_adapter

    adapters = read_experts(spec.library, spec.experts)
    shapes = module_shapes(adapters)
    rank = max(a.shape[0] for ad in adapters for a, _ in ad.modules.values())
    out = []
    for name, ad in zip(spec.experts, adapters, strict=True):
        key = hashlib.sha256(
            json.dumps([spec.library.adapter(name).weights_sha256, rank, sorted(shapes)]).encode()
        ).hexdigest()
        path = cache_root() / "arrow_padded" / key[:24]
        if not (path / "adapter_config.json").is_file():
            import torch

            modules = {
                m: ad.modules.get(m) or (torch.zeros(rank, shape[1]), torch.zeros(shape[0], rank))
                for m, shape in shapes.items()
            }
            with atomic_dir(path, None) as tmp:
                write_adapter(tmp, LoraFactors(modules), ad.base_model_name_or_path)
        out.append(str(path))
    return out


def build(base_model, spec):
    """``base_model`` routing per token over the chosen experts (``arrow_impl`` picks how)."""
    if spec.params.arrow_impl == "peft":
        return build_peft(base_model, spec)
    from lorareuse_plugin.reuse.arrow_fused import attach, fused_layers
    from lorareuse_plugin.reuse.lora_io import read_experts

    p = next(base_model.parameters())
    layers = fused_layers(
        read_experts(spec.library, spec.experts), spec.params.top_k, spec.params.temperature, p.dtype, p.device
    )
    base_model._lorareuse_arrow_hooks = attach(base_model, layers)  # the handles: removable
    return base_model


def build_peft(base_model, spec):
    """Wrap ``base_model`` in PEFT's Arrow model over the chosen experts, with exact prototypes."""
    import torch
    from peft import ArrowConfig, create_arrow_model
    from peft.tuners.lora import LoraLayer

    from lorareuse_plugin.reuse.prototypes import expert_prototype

    paths = padded_dirs(spec)
    cfg = ArrowConfig(top_k=spec.params.top_k, router_temperature=spec.params.temperature, rng_seed=spec.params.seed)
    model = create_arrow_model(base_model, task_specific_adapter_paths=paths, arrow_config=cfg)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, LoraLayer) and hasattr(mod, "lora_arrow") and "arrow_router" in mod.lora_arrow:
                router = mod.lora_arrow["arrow_router"]
                router.gen_know_sub(mod.lora_A, mod.lora_B)
                router.build_prototypes(mod.lora_A, mod.lora_B)
                protos = [
                    expert_prototype(mod.lora_A[n].weight.float(), mod.lora_B[n].weight.float())
                    for n in router.task_adapter_names
                ]
                router.prototypes.copy_(torch.stack(protos).to(router.prototypes.dtype))
    model.eval()
    return model
