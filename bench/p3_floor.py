"""P3's floor — what the routing itself costs on the demo base, and what the LoRA arithmetic costs.

Forward wall time of one batch (32 × 40 tokens) of the demo base: the base; our fused Arrow over
three experts (top-1); and the same fused layers with the routing cut out (every expert's rank
projection added, no scores, no top-k: the arithmetic any per-token mixture of these experts pays).
Interleaved, best of 8 × REPS. The gap floor → fused is the routing; floor → base is the LoRA work.
"""

from __future__ import annotations

import time

import common


def main() -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM

    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.reuse.arrow_fused import attach, fused_layers
    from lorareuse_plugin.reuse.lora_io import read_experts

    lib = load_library(common.demo_library())
    path = lib.manifest["base"]["name_or_path"]
    layers = fused_layers(read_experts(lib, ["hop1", "hop2", "target"]), 1, 1.0, torch.float32, "cpu")
    models = {name: AutoModelForCausalLM.from_pretrained(path).eval() for name in ("base", "fused", "floor")}
    attach(models["fused"], layers)
    attach(models["floor"], layers, group_type=common.unrouted_group_type())
    ids = torch.randint(3, 500, (32, 40), generator=torch.Generator().manual_seed(0))
    best = dict.fromkeys(models, float("inf"))
    with torch.no_grad():
        for _ in range(8 * common.REPS):
            for name, m in models.items():
                start = time.perf_counter()
                m(input_ids=ids)
                best[name] = min(best[name], time.perf_counter() - start)
    b = best["base"]
    return [
        common.emit("P3", "demo-base forward: base", b, "s", tokens=ids.numel()),
        common.emit("P3", "demo-base forward: arrow (fused) / base time", best["fused"] / b, "ratio"),
        common.emit("P3", "demo-base forward: the experts' LoRA work unrouted / base time", best["floor"] / b, "ratio"),
    ]


if __name__ == "__main__":
    main()
