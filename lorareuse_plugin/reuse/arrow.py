"""``arrow``: per-token, per-layer routing (Ostapenko et al. 2024) through PEFT's Arrow.

Every LoRA layer scores each token against each expert's prototype (|x·v|), keeps the top-k and
mixes their outputs with softmax(score/temperature). Built with ``peft.create_arrow_model``,
seeded, with its power-iteration prototypes replaced by exact SVD ones. HF only: vLLM applies one
adapter per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError


@dataclass(frozen=True)
class Params:
    top_k: int = field(default=1, metadata={"help": "experts per token (1..#experts)"})
    temperature: float = field(default=1.0, metadata={"help": "router softmax temperature"})
    seed: int = field(default=0, metadata={"help": "PEFT router seed"})


def check_spec(spec) -> None:
    from lorareuse_plugin.reuse.seq_arrow import check_spec as check_top_k

    check_top_k(spec)
    experts = spec.library.manifest["experts"]
    ranks = {experts[e]["rank"] for e in spec.experts}
    targets = {tuple(sorted(experts[e]["targets"])) for e in spec.experts}
    if len(ranks) > 1 or len(targets) > 1:
        raise ConfigError(
            f"arrow needs experts of equal rank and targets; {'+'.join(spec.experts)} have ranks "
            f"{sorted(ranks)} and {len(targets)} different target sets (use seq_arrow or delta_mean)"
        )


def build(base_model, spec):
    """Wrap ``base_model`` in PEFT's Arrow model over the chosen experts, with exact prototypes."""
    import torch
    from peft import ArrowConfig, create_arrow_model
    from peft.tuners.lora import LoraLayer

    from lorareuse_plugin.reuse.prototypes import top_right_singular_vector

    paths = [str(spec.library.expert_dir(e)) for e in spec.experts]
    cfg = ArrowConfig(top_k=spec.params.top_k, router_temperature=spec.params.temperature, rng_seed=spec.params.seed)
    model = create_arrow_model(base_model, task_specific_adapter_paths=paths, arrow_config=cfg)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, LoraLayer) and hasattr(mod, "lora_arrow") and "arrow_router" in mod.lora_arrow:
                router = mod.lora_arrow["arrow_router"]
                router.gen_know_sub(mod.lora_A, mod.lora_B)
                router.build_prototypes(mod.lora_A, mod.lora_B)
                protos = [
                    top_right_singular_vector(mod.lora_A[n].weight.float(), mod.lora_B[n].weight.float())
                    for n in router.task_adapter_names
                ]
                router.prototypes.copy_(torch.stack(protos).to(router.prototypes.dtype))
    model.eval()
    return model
