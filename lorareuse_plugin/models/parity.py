"""Backend parity: one reuse spec, the same probe requests on ``lorareuse-hf`` and ``lorareuse-vllm``.

The probe set is the library's own tasks (each expert's probe task and the composed test, gen
form; whole tasks by default), so routed specs route exactly as in an evaluation. Reports the
largest |Δ log-likelihood| of the gold answers, the share of identical greedy generations and
whether both backends chose the same adapter for every request. Every greedy disagreement is
explained: at the first token where the two generations part, both candidate tokens are scored
on both backends; when each backend prefers its own token by at most ``tie_tolerance`` nats it is
a *near tie* (float rounding picks the winner), otherwise a *real difference* (a bug to find).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from lorareuse_plugin.errors import ConfigError

DEFAULT_TOLERANCE = 1e-4
DEFAULT_TIE_TOLERANCE = 1e-3  # nats: 60x the largest fp32 |Δ logprob| measured between the backends
NEAR_TIE, REAL_DIFFERENCE = "near tie", "real difference"


def probe_requests(spec, per_task: int | None = 4, max_gen_toks: int = 32) -> tuple[list, list]:
    """(loglikelihood, generate_until) lm-eval Instances over the library's gen-form tasks;
    ``per_task=None``: every document (whole tasks, as an evaluation runs them)."""
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


def first_divergence(tokenizer, a: str, b: str) -> tuple[str, str, str] | None:
    """(common prefix text, a's next token, b's next token) where two generations part; a
    generation that ended there contributes its stop ("\n"). None when they are equal."""
    if a == b:
        return None
    ta = tokenizer(a, add_special_tokens=False)["input_ids"]
    tb = tokenizer(b, add_special_tokens=False)["input_ids"]
    k = 0
    while k < min(len(ta), len(tb)) and ta[k] == tb[k]:
        k += 1

    def nxt(t: list[int]) -> str:
        return tokenizer.decode(t[k : k + 1]) if k < len(t) else "\n"

    return tokenizer.decode(ta[:k]), nxt(ta), nxt(tb)


def classify(margin_hf: float, margin_vllm: float, tie_tolerance: float) -> str:
    """Each margin is how much a backend prefers its own token over the other's."""
    return NEAR_TIE if abs(margin_hf) <= tie_tolerance and abs(margin_vllm) <= tie_tolerance else REAL_DIFFERENCE


def _margin_requests(gen: list, diverging: list[tuple[int, tuple[str, str, str]]]) -> list:
    from lm_eval.api.instance import Instance

    reqs = []
    for i, (prefix, tok_hf, tok_vllm) in diverging:
        doc, meta = gen[i].doc, gen[i].metadata
        context = gen[i].args[0] + prefix
        reqs += [
            Instance("loglikelihood", doc, (context, tok_hf), idx=0, metadata=meta),
            Instance("loglikelihood", doc, (context, tok_vllm), idx=0, metadata=meta),
        ]
    return reqs


def _run(model_cls, model_args: dict[str, Any], ll: list, gen: list, then=None) -> dict[str, Any]:
    """Serve, score ``ll``, generate ``gen``; ``then(texts)`` may return more loglikelihood
    requests for the same live model (the disagreement margins)."""
    start = time.perf_counter()
    lm = model_cls(**model_args)
    loaded = time.perf_counter()
    scores = [lp for lp, _ in lm.loglikelihood(ll, disable_tqdm=True)] if ll else []
    texts = lm.generate_until(gen, disable_tqdm=True) if gen else []
    extra = then(texts) if then else []
    out = {
        "loglik": scores,
        "text": texts,
        "extra": [lp for lp, _ in lm.loglikelihood(extra, disable_tqdm=True)] if extra else [],
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
    per_task: int | None = None,
    dtype: str = "float32",
    max_model_len: int = 512,
    tie_tolerance: float = DEFAULT_TIE_TOLERANCE,
) -> dict[str, Any]:
    """Serve one spec on both backends and compare them request by request."""
    import torch

    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.models.vllm import REFUSED, LorareuseVLLM
    from lorareuse_plugin.reuse.spec import parse_spec

    params = dict(params or {})
    if per_task is not None and per_task < 1:
        raise ConfigError(f"--per-task {per_task} must be at least 1 (omit it for whole tasks)")
    if not 0 < tie_tolerance < 1:
        raise ConfigError(f"--tie-tolerance {tie_tolerance} must be in (0, 1) nats, e.g. 1e-3")
    spec = parse_spec(library, method, experts, weights, **params)
    if spec.method.name in REFUSED:  # before the HF run, not after it
        raise ConfigError(REFUSED[spec.method.name])
    ll, gen = probe_requests(spec, per_task)
    common = {"library": library, "method": method, "dtype": dtype, **params}
    common.update({k: v for k, v in (("experts", experts), ("weights", weights)) if v})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hf_args = {**common, "device": device, "batch_size": 16}
    hf = _run(LorareuseHFLM, hf_args, ll, gen)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec.library.manifest["base"]["name_or_path"])
    diverging: list = []

    def margins_on_vllm(texts: list[str]) -> list:
        for i, (a, b) in enumerate(zip(hf["text"], texts, strict=True)):
            split = first_divergence(tok, a, b)
            if split is not None:
                diverging.append((i, split))
        return _margin_requests(gen, diverging)

    vl = _run(LorareuseVLLM, {**common, "max_model_len": max_model_len}, ll, gen, then=margins_on_vllm)
    hf_margins = _run(LorareuseHFLM, hf_args, _margin_requests(gen, diverging), []) if diverging else {"loglik": []}
    disagreements = []
    for j, (i, (prefix, tok_hf, tok_vllm)) in enumerate(diverging):
        h_own, h_other = hf_margins["loglik"][2 * j], hf_margins["loglik"][2 * j + 1]
        v_other, v_own = vl["extra"][2 * j], vl["extra"][2 * j + 1]
        m_hf, m_vl = h_own - h_other, v_own - v_other
        disagreements.append(
            {
                "task": gen[i].metadata[0],
                "doc": gen[i].metadata[1],
                "hf": hf["text"][i],
                "vllm": vl["text"][i],
                "common_prefix": prefix,
                "hf_token": tok_hf,
                "vllm_token": tok_vllm,
                "margin_hf": m_hf,
                "margin_vllm": m_vl,
                "class": classify(m_hf, m_vl, tie_tolerance),
            }
        )
    deltas = [abs(a - b) for a, b in zip(hf["loglik"], vl["loglik"], strict=True)]
    return {
        "spec": spec.label,
        "loglikelihood_requests": len(ll),
        "generate_requests": len(gen),
        "max_abs_dlogprob": max(deltas),
        "greedy_agreement": 1 - len(disagreements) / len(gen),
        "disagreements": disagreements,
        "near_ties": sum(d["class"] == NEAR_TIE for d in disagreements),
        "real_differences": sum(d["class"] == REAL_DIFFERENCE for d in disagreements),
        "tie_tolerance": tie_tolerance,
        "routes_agree": hf["routes"] == vl["routes"],
        "hf_s": {"load": round(hf["load_s"], 2), "eval": round(hf["eval_s"], 2)},
        "vllm_s": {"load": round(vl["load_s"], 2), "eval": round(vl["eval_s"], 2)},
    }
