"""P3 at a larger width — per-token Arrow vs the base model when the base matmuls dominate.

The demo base is tiny (hidden 128): each adapted layer's Arrow routing adds a dozen small ops that
cost as much as the layer's own matmul. This measures PEFT's Arrow layers and our fused forward (three
random rank-8 experts on all seven projections, top-1) on a randomly initialised Llama of hidden
1024 (4 layers, ~70 M parameters) — forward wall time of one batch, base vs each, best of REPS.
Goal: fused ≤ 1.1 × base.
"""

from __future__ import annotations

import tempfile
import time

import common


def main() -> list[dict]:
    import torch
    from peft import ArrowConfig, LoraConfig, create_arrow_model, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=4096,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=4,
        num_attention_heads=16,
        num_key_value_heads=16,
    )
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    ids = torch.randint(0, config.vocab_size, (16, 64))
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(3):
            lora = LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False)
            peft = get_peft_model(LlamaForCausalLM(config), lora)
            peft.save_pretrained(f"{tmp}/e{i}")
            paths.append(f"{tmp}/e{i}")
        base = LlamaForCausalLM(config).eval()
        arrow = create_arrow_model(
            LlamaForCausalLM(config).eval(), task_specific_adapter_paths=paths, arrow_config=ArrowConfig(top_k=1)
        ).eval()
        from lorareuse_plugin.reuse.arrow_fused import attach, fused_layers
        from lorareuse_plugin.reuse.lora_io import read_adapter

        fused = LlamaForCausalLM(config).eval()
        attach(fused, fused_layers([read_adapter(p) for p in paths], 1, 1.0, torch.float32, "cpu"))
        best = {"base": float("inf"), "arrow": float("inf"), "fused": float("inf")}
        with torch.no_grad():
            for _ in range(common.REPS):
                for name, m in (("base", base), ("arrow", arrow), ("fused", fused)):
                    start = time.perf_counter()
                    m(input_ids=ids)
                    best[name] = min(best[name], time.perf_counter() - start)
    return [
        common.emit("P3", "hidden-1024 Llama forward: base", best["base"], "s", tokens=ids.numel()),
        common.emit("P3", "hidden-1024 Llama forward: arrow (peft) / base time", best["arrow"] / best["base"], "ratio"),
        common.emit(
            "P3",
            "hidden-1024 Llama forward: arrow (fused) / base time",
            best["fused"] / best["base"],
            "ratio",
            goal="<= 1.1",
        ),
    ]


if __name__ == "__main__":
    main()
