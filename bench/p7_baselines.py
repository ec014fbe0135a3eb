"""P7 — what the simple baselines cost per request, relative to the base model.

Greedy generation of the demo two-hop F library's composed CoT test questions (the requests
``chain``, ``ensemble`` and ``rescore`` exist for), timed side by side: the base, one merged
adapter (``delta_mean``), ``ensemble`` (one forward pass per expert per token, no KV cache),
``chain`` (two generations per request) and ``rescore`` (one generation per candidate — each
expert and their mean — plus the rescorer's passes). Best of REPS rounds, interleaved.
"""

from __future__ import annotations

import time

import common

N_REQUESTS = 32


def _requests(lib) -> list:
    from lm_eval.api.instance import Instance

    from lorareuse_plugin.data.build import build_dataset, make_spec

    data = lib.manifest["data"]
    docs = build_dataset(
        make_spec(data["family"], data["familiarity"], data["seed"], data["sizes"]["n_test"], data["sizes"]["n_target"])
    ).splits["test"]
    gen = {"until": ["\n\n", "Q:"], "max_gen_toks": 64, "do_sample": False}
    return [
        Instance("generate_until", d, (d["cot_prompt"], dict(gen)), idx=0, metadata=("lorareuse_twohop_f_cot", i, 1))
        for i, d in enumerate(docs[:N_REQUESTS])
    ]


def main() -> list[dict]:
    from lm_eval.models.huggingface import HFLM

    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.rescore.model import build_rescorer

    build_rescorer(progress=False, log=lambda m: None)  # cached after the first bench
    lib = load_library(common.demo_library())
    base = lib.manifest["base"]["name_or_path"]
    opts = {"dtype": "float32", "device": "cpu", "batch_size": 32}
    two = {"library": str(lib.root), "experts": "hop1+hop2", **opts}
    makers = {
        "base": lambda: HFLM(pretrained=base, **opts),
        "delta_mean": lambda: LorareuseHFLM(method="delta_mean", **two),
        "ensemble": lambda: LorareuseHFLM(method="ensemble", **two),
        "chain": lambda: LorareuseHFLM(method="chain", **two),
        "rescore": lambda: LorareuseHFLM(method="rescore", **two),
    }
    requests = _requests(lib)
    models = {k: make() for k, make in makers.items()}
    best: dict[str, float] = {}
    for _ in range(max(1, common.REPS // 2)):
        for name, lm in models.items():
            start = time.perf_counter()
            lm.generate_until(requests, disable_tqdm=True)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    rows = []
    for name in ("delta_mean", "ensemble", "chain", "rescore"):
        rows.append(
            common.emit(
                "P7",
                f"{name} / base time per CoT request (greedy, n={len(requests)})",
                best[name] / best["base"],
                "ratio",
            )
        )
    stats = models["rescore"]._extra_info["rescore"]
    rows.append(
        common.emit(
            "P7",
            "rescore: candidate generations per request",
            stats["candidate_generations"] / stats["requests"],
            "count",
        )
    )
    rows.append(
        common.emit("P7", "rescore: rescorer passes per request", stats["rescorer_passes"] / stats["requests"], "count")
    )
    rows.append(common.emit("P7", "base: seconds per CoT request", best["base"] / len(requests), "s"))
    return rows


if __name__ == "__main__":
    main()
