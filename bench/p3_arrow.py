"""P3 — per-token Arrow routing vs the base model (lorareuse-hf).

Log-likelihood wall time (the same distinct requests for every model) of
``arrow[hop1+hop2+target]`` — our fused forward (default, ``reuse/arrow_fused.py``) and PEFT's own
Arrow layers (``arrow_impl=peft``, same exact prototypes) — against the base model and
``seq_arrow``; and, in the same run, the fused layers with the routing cut out (every expert's
LoRA added: the arithmetic any per-token mixture of the three experts pays, the floor under the
goal). Goal: fused arrow ≤ 1.3 × base time.
"""

from __future__ import annotations

import common


def main() -> list[dict]:
    from lm_eval.models.huggingface import HFLM

    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.models.hf import LorareuseHFLM

    lib = load_library(common.demo_library())
    base = lib.manifest["base"]["name_or_path"]
    requests = common.workload(lib)
    opts = {"dtype": "float32", "device": "cpu", "batch_size": 32}
    experts = "hop1+hop2+target"

    def unrouted():
        import torch

        from lorareuse_plugin.reuse.arrow_fused import attach, fused_layers
        from lorareuse_plugin.reuse.lora_io import read_experts

        lm = LorareuseHFLM(library=str(lib.root), method="arrow", experts=experts, **opts)
        model = lm.model
        for hook in model._lorareuse_arrow_hooks:
            hook.remove()
        layers = fused_layers(read_experts(lib, experts.split("+")), 1, 1.0, torch.float32, "cpu")
        model._lorareuse_arrow_hooks = attach(model, layers, group_type=common.unrouted_group_type())
        return lm

    r = common.side_by_side(
        {
            "base": lambda: HFLM(pretrained=base, **opts),
            "arrow": lambda: LorareuseHFLM(library=str(lib.root), method="arrow", experts=experts, **opts),
            "arrow_peft": lambda: LorareuseHFLM(
                library=str(lib.root), method="arrow", experts=experts, arrow_impl="peft", **opts
            ),
            "seq_arrow": lambda: LorareuseHFLM(library=str(lib.root), method="seq_arrow", experts=experts, **opts),
            "unrouted": unrouted,
        },
        requests,
    )
    b = r["base"]["eval_s"]
    return [
        common.emit("P3", "base eval time", b, "s", requests=r["base"]["requests"]),
        common.emit("P3", "arrow (fused) eval time", r["arrow"]["eval_s"], "s"),
        common.emit("P3", "arrow (fused) / base time", r["arrow"]["eval_s"] / b, "ratio", goal="<= 1.3"),
        common.emit("P3", "the experts' LoRA work unrouted (floor) / base time", r["unrouted"]["eval_s"] / b, "ratio"),
        common.emit("P3", "arrow (peft) / base time", r["arrow_peft"]["eval_s"] / b, "ratio"),
        common.emit("P3", "seq_arrow / base time", r["seq_arrow"]["eval_s"] / b, "ratio"),
    ]


if __name__ == "__main__":
    main()
