"""Backend parity: one reuse spec, the same probe requests on ``lorareuse-hf`` and ``lorareuse-vllm``.

The probe set is the library's own tasks (each expert's probe task and the composed test, gen
form), so routed specs route exactly as in an evaluation. Reports the largest |Δ log-likelihood|
of the gold answers, the share of identical greedy generations and whether both backends chose
the same adapter for every request.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from lorareuse_plugin.errors import ConfigError

DEFAULT_TOLERANCE = 1e-4


def probe_requests(spec, per_task: int = 4, max_gen_toks: int = 16) -> tuple[list, list]:
    """(loglikelihood, generate_until) lm-eval Instances over the library's gen-form tasks."""
    from lm_eval.api.instance import Instance

    from lorareuse_plugin.data.catalog import task_specs

    data = spec.library.manifest["data"]
    ds = spec.library.dataset()
    fam = data["familiarity"]
    tasks = [t for t in task_specs() if t.family == data["family"] and t.familiarity == fam and t.form == "gen"]
    ll, gen = [], []
    for t in tasks:
        for i, doc in enumerate(ds.splits[t.split][:per_task]):
            meta = (t.name, i, 1)
            ll.append(Instance("loglikelihood", doc, (doc["prompt"], " " + str(doc["answer"])), idx=0, metadata=meta))
            kwargs = {"until": ["\n"], "max_gen_toks": max_gen_toks, "do_sample": False}
            gen.append(Instance("generate_until", doc, (doc["prompt"], kwargs), idx=0, metadata=meta))
    return ll, gen


def _run(model_cls, model_args: dict[str, Any], ll: list, gen: list) -> dict[str, Any]:
    start = time.perf_counter()
    lm = model_cls(**model_args)
    loaded = time.perf_counter()
    scores = [lp for lp, _ in lm.loglikelihood(ll, disable_tqdm=True)]
    texts = lm.generate_until(gen, disable_tqdm=True)
    out = {
        "loglik": scores,
        "text": texts,
        "routes": dict(lm.route_log),
        "load_s": loaded - start,
        "eval_s": time.perf_counter() - loaded,
    }
    del lm
    gc.collect()
    return out


def run_parity(
    library: str,
    method: str = "delta_mean",
    experts: str | None = None,
    weights: str | None = None,
    params: dict[str, Any] | None = None,
    per_task: int = 4,
    dtype: str = "float32",
    max_model_len: int = 512,
) -> dict[str, Any]:
    """Serve one spec on both backends and compare them request by request."""
    import torch

    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.models.vllm import REFUSED, LorareuseVLLM
    from lorareuse_plugin.reuse.spec import parse_spec

    params = dict(params or {})
    if per_task < 1:
        raise ConfigError(f"--per-task {per_task} must be at least 1")
    spec = parse_spec(library, method, experts, weights, **params)
    if spec.method.name in REFUSED:  # before the HF run, not after it
        raise ConfigError(REFUSED[spec.method.name])
    ll, gen = probe_requests(spec, per_task)
    common = {"library": library, "method": method, "dtype": dtype, **params}
    common.update({k: v for k, v in (("experts", experts), ("weights", weights)) if v})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hf = _run(LorareuseHFLM, {**common, "device": device, "batch_size": 16}, ll, gen)
    vl = _run(LorareuseVLLM, {**common, "max_model_len": max_model_len}, ll, gen)
    deltas = [abs(a - b) for a, b in zip(hf["loglik"], vl["loglik"], strict=True)]
    same = sum(a == b for a, b in zip(hf["text"], vl["text"], strict=True))
    return {
        "spec": spec.label,
        "loglikelihood_requests": len(ll),
        "generate_requests": len(gen),
        "max_abs_dlogprob": max(deltas),
        "greedy_agreement": same / len(gen),
        "routes_agree": hf["routes"] == vl["routes"],
        "hf_s": {"load": round(hf["load_s"], 2), "eval": round(hf["eval_s"], 2)},
        "vllm_s": {"load": round(vl["load_s"], 2), "eval": round(vl["eval_s"], 2)},
    }
