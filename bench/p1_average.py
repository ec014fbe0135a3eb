"""P1 — an averaged library costs (almost) nothing over the base model.

Log-likelihood throughput (requests/s over the same distinct requests, batch size 32) of: the
base (stock lm-eval ``hf``);
``lorareuse-hf`` with ``delta_mean[hop1+hop2]`` merged into the weights; stock lm-eval
``hf,peft=<the same merged adapter>`` (LoRA kept unmerged). Goal: merged/base ≥ 0.97.
"""

from __future__ import annotations

import common


def main() -> list[dict]:
    from lm_eval.models.huggingface import HFLM

    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.reuse.merge import merged_adapter
    from lorareuse_plugin.reuse.spec import parse_spec

    lib = load_library(common.demo_library())
    base = lib.manifest["base"]["name_or_path"]
    adapter = merged_adapter(parse_spec(lib, "delta_mean", "hop1+hop2"))
    requests = common.workload(lib)
    opts = {"dtype": "float32", "device": "cpu", "batch_size": 32}
    r = common.side_by_side(
        {
            "base": lambda: HFLM(pretrained=base, **opts),
            "lorareuse-hf merged": lambda: LorareuseHFLM(
                library=str(lib.root), method="delta_mean", experts="hop1+hop2", **opts
            ),
            "hf,peft= unmerged": lambda: HFLM(pretrained=base, peft=str(adapter), **opts),
        },
        requests,
    )
    b = r["base"]["req_per_s"]
    rows = [
        common.emit("P1", f"{n} throughput", v["req_per_s"], "requests/s", requests=v["requests"]) for n, v in r.items()
    ]
    rows.append(
        common.emit(
            "P1", "merged / base throughput", r["lorareuse-hf merged"]["req_per_s"] / b, "ratio", goal=">= 0.97"
        )
    )
    rows.append(common.emit("P1", "peft unmerged / base throughput", r["hf,peft= unmerged"]["req_per_s"] / b, "ratio"))
    return rows


if __name__ == "__main__":
    main()
