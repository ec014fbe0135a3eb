"""P3 — per-token Arrow routing vs the base model (lorareuse-hf).

Log-likelihood wall time (the same distinct requests for every model) of
``arrow[hop1+hop2+target]`` — our fused forward (default, ``reuse/arrow_fused.py``) and PEFT's own
Arrow layers (``arrow_impl=peft``, same exact prototypes) — against the base model and
``seq_arrow``. Goal: fused arrow ≤ 1.3 × base time.
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
    r = common.side_by_side(
        {
            "base": lambda: HFLM(pretrained=base, **opts),
            "arrow": lambda: LorareuseHFLM(library=str(lib.root), method="arrow", experts=experts, **opts),
            "arrow_peft": lambda: LorareuseHFLM(
                library=str(lib.root), method="arrow", experts=experts, arrow_impl="peft", **opts
            ),
            "seq_arrow": lambda: LorareuseHFLM(library=str(lib.root), method="seq_arrow", experts=experts, **opts),
        },
        requests,
    )
    b = r["base"]["eval_s"]
    return [
        common.emit("P3", "base eval time", b, "s", requests=r["base"]["requests"]),
        common.emit("P3", "arrow (fused) eval time", r["arrow"]["eval_s"], "s"),
        common.emit("P3", "arrow (fused) / base time", r["arrow"]["eval_s"] / b, "ratio", goal="<= 1.3"),
        common.emit("P3", "arrow (peft) / base time", r["arrow_peft"]["eval_s"] / b, "ratio"),
        common.emit("P3", "seq_arrow / base time", r["seq_arrow"]["eval_s"] / b, "ratio"),
    ]


if __name__ == "__main__":
    main()
