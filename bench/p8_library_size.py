"""P8 — how cost grows with the library: 2, 4, 8 and 16 experts.

Random rank-8 LoRAs on all seven projections of two randomly initialised Llamas — the demo base's
shape (hidden 128, 6 layers) and hidden 1024 (4 layers) — because what grows with the library is
the adapters, not the weights' values. Per size: the time of each merge method (delta_mean,
factor_mean, svd, ties, dare; uniform weights), per-token Arrow's forward time relative to the base
(our fused forward and PEFT's layers, top-1), one expert applied unmerged relative to the base (what
``oracle``/``seq_arrow`` serve per request once routed; seq_arrow adds one scoring pass per prompt,
measured in P2/P3), and the process's peak resident memory — every size in its own process, so the
peaks do not carry over.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time

import common

SIZES = (2, 4, 8, 16)
SHAPES = {
    "demo base shape (hidden 128)": {"hidden": 128, "intermediate": 384, "layers": 6, "heads": 4, "vocab": 1024},
    "hidden 1024": {"hidden": 1024, "intermediate": 2816, "layers": 4, "heads": 16, "vocab": 4096},
}
MERGES = ("delta_mean", "factor_mean", "svd", "ties", "dare")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def one(shape: str, experts: int) -> dict:
    """Every measure for one (shape, library size), in this process."""
    import importlib

    import torch
    from peft import ArrowConfig, LoraConfig, PeftModel, create_arrow_model, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from lorareuse_plugin.reuse.arrow_fused import attach, fused_layers
    from lorareuse_plugin.reuse.lora_io import read_adapter

    torch.manual_seed(0)
    s = SHAPES[shape]
    config = LlamaConfig(
        vocab_size=s["vocab"],
        hidden_size=s["hidden"],
        intermediate_size=s["intermediate"],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        num_key_value_heads=s["heads"],
    )
    ids = torch.randint(0, config.vocab_size, (16, 64))
    out: dict = {"shape": shape, "experts": experts}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(experts):
            lora = LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, init_lora_weights=False)
            get_peft_model(LlamaForCausalLM(config), lora).save_pretrained(f"{tmp}/e{i}")
            paths.append(f"{tmp}/e{i}")
        adapters = [read_adapter(p) for p in paths]
        weights = [1.0 / experts] * experts
        for name in MERGES:
            mod = importlib.import_module(f"lorareuse_plugin.reuse.{name}")
            start = time.perf_counter()
            mod.merge(adapters, weights, mod.Params())
            out[f"merge {name} s"] = time.perf_counter() - start
        base = LlamaForCausalLM(config).eval()
        fused = LlamaForCausalLM(config).eval()
        attach(fused, fused_layers(adapters, 1, 1.0, torch.float32, "cpu"))
        peft_arrow = create_arrow_model(
            LlamaForCausalLM(config).eval(), task_specific_adapter_paths=paths, arrow_config=ArrowConfig(top_k=1)
        ).eval()
        single = PeftModel.from_pretrained(LlamaForCausalLM(config), paths[0]).eval()
        models = {"base": base, "arrow (fused)": fused, "arrow (peft)": peft_arrow, "one expert unmerged": single}
        best = dict.fromkeys(models, float("inf"))
        with torch.no_grad():
            for _ in range(common.REPS):
                for name, m in models.items():
                    start = time.perf_counter()
                    m(input_ids=ids)
                    best[name] = min(best[name], time.perf_counter() - start)
        for name in models:
            if name != "base":
                out[f"{name} / base time"] = best[name] / best["base"]
    out["peak RSS MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def curve(results: list[dict]) -> str:
    """One Markdown table per shape: a row per library size, a column per measure."""
    out = []
    for shape in SHAPES:
        mine = [r for r in results if r["shape"] == shape]
        cols = [c for c in mine[0] if c not in ("shape", "experts")]
        out += [f"P8, {shape}:", "", "| experts | " + " | ".join(cols) + " |", "|---:|" + "---:|" * len(cols)]
        out += [f"| {r['experts']} | " + " | ".join(f"{r[c]:.3g}" for c in cols) + " |" for r in mine]
        out.append("")
    return "\n".join(out)


def main() -> list[dict]:
    rows, results = [], []
    for shape in SHAPES:
        for n in SIZES:
            proc = subprocess.run(
                [sys.executable, __file__, "--one", shape, str(n)], capture_output=True, text=True, check=True
            )
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(result)
            for measure, value in result.items():
                if measure not in ("shape", "experts"):
                    unit = "MiB" if "MiB" in measure else "s" if measure.endswith(" s") else "ratio"
                    rows.append(common.emit("P8", f"{shape}, {n} experts: {measure}", value, unit))
    print(curve(results), flush=True)
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(one(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
