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
import math
import time
from dataclasses import dataclass
from typing import Any

from lorareuse_plugin.errors import ConfigError

DEFAULT_TOLERANCE = 1e-4
MIN_TIE_TOLERANCE = 1e-3  # nats; the default is max(this, 2 x the run's largest |Δ logprob| on gold answers)
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


@dataclass(frozen=True)
class Divergence:
    """Where two greedy generations part: the shared prefix and each side's next token (a side
    that stopped there offers its stops: the newline and EOS token ids)."""

    prefix_ids: tuple[int, ...]
    prefix: str
    a_ids: tuple[int, ...]
    b_ids: tuple[int, ...]
    a: str
    b: str


def stop_ids(tokenizer) -> tuple[int, ...]:
    """The tokens a greedy generation of our tasks stops on: the newline and EOS."""
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"][-1:]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return tuple(dict.fromkeys([*newline, *eos]))


def first_divergence(tokenizer, a: str, b: str) -> Divergence | None:
    """The first token at which generation ``a`` and ``b`` differ (re-tokenized); None if equal."""
    if a == b:
        return None
    ta = tokenizer(a, add_special_tokens=False)["input_ids"]
    tb = tokenizer(b, add_special_tokens=False)["input_ids"]
    k = 0
    while k < min(len(ta), len(tb)) and ta[k] == tb[k]:
        k += 1
    stops = stop_ids(tokenizer)

    def nxt(t: list[int]) -> tuple[tuple[int, ...], str]:
        return ((t[k],), tokenizer.decode(t[k : k + 1])) if k < len(t) else (stops, "<stop>")

    (a_ids, a_text), (b_ids, b_text) = nxt(ta), nxt(tb)
    return Divergence(tuple(ta[:k]), tokenizer.decode(ta[:k]), a_ids, b_ids, a_text, b_text)


def served_as_routed(lm, request):
    """The context in which ``lm`` serves ``request`` with the adapter its router picks for it
    (nothing to switch when one adapter serves everything)."""
    import contextlib

    if getattr(lm, "_router", None) is None:
        return contextlib.nullcontext()
    ((adapter, _),) = lm._routes([request])
    return lm._serving(adapter)


def hf_divergence(lm, request, other: str, tokenizer) -> Divergence | None:
    """The divergence from HF's *own* generated token ids (re-tokenizing its text can split the
    shared prefix differently): HF regenerates greedily and is walked token by token along the
    other backend's text; the other side's next token is the first token of its remaining text."""
    import torch

    prompt, kwargs = request.args
    context = torch.tensor([lm.tok_encode(prompt)], device=lm.device)
    with served_as_routed(lm, request), torch.no_grad():
        out = lm._model_generate(
            context=context,
            max_length=context.shape[1] + kwargs.get("max_gen_toks", 32),
            stop=list(kwargs.get("until", [])) + [tokenizer.decode([tokenizer.eos_token_id])],
            attention_mask=torch.ones_like(context),
            do_sample=False,
        )
    own = out[0, context.shape[1] :].tolist()
    stops = set(stop_ids(tokenizer))
    k = 0
    while k < len(own) and own[k] not in stops and other.startswith(tokenizer.decode(own[: k + 1])):
        k += 1
    prefix = tokenizer.decode(own[:k])
    rest = other[len(prefix) :]
    if k < len(own) and own[k] not in stops:
        a_ids, a = (own[k],), tokenizer.decode(own[k : k + 1])
    else:
        a_ids, a = tuple(sorted(stops)), "<stop>"
    if rest:
        first = tokenizer(rest, add_special_tokens=False)["input_ids"][:1]
        b_ids, b = tuple(first), tokenizer.decode(first)
    else:
        b_ids, b = tuple(sorted(stops)), "<stop>"
    if a_ids == b_ids:
        return None  # the texts differ only after HF's stop: no token-level disagreement
    return Divergence(tuple(own[:k]), prefix, a_ids, b_ids, a, b)


def classify(margin_hf: float, margin_vllm: float, tie_tolerance: float) -> str:
    """Each margin is how much a backend prefers its own token over the other's."""
    return NEAR_TIE if abs(margin_hf) <= tie_tolerance and abs(margin_vllm) <= tie_tolerance else REAL_DIFFERENCE


def score_candidates(lm, request, div: Divergence) -> tuple[float, float]:
    """log p(a's next token) and log p(b's next token) after the request's prompt + the shared
    prefix, on a live backend, token by token (lm-eval's ``_loglikelihood_tokens``: candidates are
    not re-tokenized), under the adapter the request was routed to. A stop candidate scores
    log(p(newline) + p(EOS))."""
    prompt = request.args[0]
    context = list(lm.tok_encode(prompt)) + list(div.prefix_ids)
    ids = list(dict.fromkeys(div.a_ids + div.b_ids))
    reqs = [((prompt + div.prefix, ""), context, [i]) for i in ids]
    with served_as_routed(lm, request):
        scored = lm._loglikelihood_tokens(reqs, disable_tqdm=True)
    lps = dict(zip(ids, (lp for lp, _ in scored), strict=True))

    def total(cands: tuple[int, ...]) -> float:
        return math.log(sum(math.exp(lps[i]) for i in cands))

    return total(div.a_ids), total(div.b_ids)


def _run(model_cls, model_args: dict[str, Any], ll: list, gen: list, then=None) -> dict[str, Any]:
    """Serve, score ``ll``, generate ``gen``; ``then(texts, lm)`` runs on the same live model
    (the disagreement margins)."""
    start = time.perf_counter()
    lm = model_cls(**model_args)
    loaded = time.perf_counter()
    scores = [lp for lp, _ in lm.loglikelihood(ll, disable_tqdm=True)] if ll else []
    texts = lm.generate_until(gen, disable_tqdm=True) if gen else []
    out = {
        "loglik": scores,
        "text": texts,
        "extra": then(texts, lm) if then else [],
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
    tie_tolerance: float | None = None,
) -> dict[str, Any]:
    """Serve one spec on both backends and compare them request by request."""
    import torch

    from lorareuse_plugin.models.hf import LorareuseHFLM
    from lorareuse_plugin.models.vllm import REFUSED, LorareuseVLLM
    from lorareuse_plugin.reuse.spec import parse_spec

    params = dict(params or {})
    if per_task is not None and per_task < 1:
        raise ConfigError(f"--per-task {per_task} must be at least 1 (omit it for whole tasks)")
    if tie_tolerance is not None and not 0 < tie_tolerance < 1:
        raise ConfigError(f"--tie-tolerance {tie_tolerance} must be in (0, 1) nats, e.g. 1e-3")
    spec = parse_spec(library, method, experts, weights, **params)
    if not spec.library.has_world:
        raise ConfigError(
            f"parity draws its requests from the library's own tasks, and {spec.library.describe()} has none: run it "
            "on a library built by `lorareuse library build` (or compare lorareuse-hf and lorareuse-vllm on your task)"
        )
    if spec.method.name in REFUSED:  # before the HF run, not after it
        raise ConfigError(REFUSED[spec.method.name])
    ll, gen = probe_requests(spec, per_task)
    common = {"library": library, "method": method, "dtype": dtype, **params}
    common.update({k: v for k, v in (("experts", experts), ("weights", weights)) if v})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hf_args = {**common, "device": device, "batch_size": 16}
    vllm_args = {**common, "max_model_len": max_model_len}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec.library.manifest["base"]["name_or_path"])
    vl = _run(LorareuseVLLM, vllm_args, ll, gen)
    diverging: list[tuple[int, Divergence]] = []

    def margins(lm) -> list[tuple[float, float]]:
        return [score_candidates(lm, gen[i], div) for i, div in diverging]

    def divergences_then_margins(texts: list[str], lm) -> list[tuple[float, float]]:
        for i, (a, b) in enumerate(zip(texts, vl["text"], strict=True)):
            if a != b and (div := hf_divergence(lm, gen[i], b, tok)) is not None:
                diverging.append((i, div))
        return margins(lm)

    hf = _run(LorareuseHFLM, hf_args, ll, gen, then=divergences_then_margins)
    vl_scores = _run(LorareuseVLLM, vllm_args, [], [], then=lambda _, lm: margins(lm))["extra"] if diverging else []
    deltas = [abs(a - b) for a, b in zip(hf["loglik"], vl["loglik"], strict=True)]
    if tie_tolerance is None:  # the backends' own numerical disagreement on the gold answers sets the scale
        tie_tolerance = max(MIN_TIE_TOLERANCE, 2 * max(deltas))
    disagreements = []
    for (i, div), (h_a, h_b), (v_a, v_b) in zip(diverging, hf["extra"], vl_scores, strict=True):
        m_hf, m_vl = h_a - h_b, v_b - v_a  # each backend's preference for the token it generated
        disagreements.append(
            {
                "task": gen[i].metadata[0],
                "doc": gen[i].metadata[1],
                "hf": hf["text"][i],
                "vllm": vl["text"][i],
                "common_prefix": div.prefix,
                "hf_token": div.a,
                "vllm_token": div.b,
                "margin_hf": m_hf,
                "margin_vllm": m_vl,
                "class": classify(m_hf, m_vl, tie_tolerance),
            }
        )
    flips = sum(a != b for a, b in zip(hf["text"], vl["text"], strict=True))
    deltas = [abs(a - b) for a, b in zip(hf["loglik"], vl["loglik"], strict=True)]
    return {
        "spec": spec.label,
        "loglikelihood_requests": len(ll),
        "generate_requests": len(gen),
        "max_abs_dlogprob": max(deltas),
        "greedy_agreement": 1 - flips / len(gen),
        "flips": flips,
        # texts that differ although HF's own token walk finds no differing token (e.g. only past a stop)
        "flips_without_token_divergence": flips - len(disagreements),
        "disagreements": disagreements,
        "near_ties": sum(d["class"] == NEAR_TIE for d in disagreements),
        "real_differences": sum(d["class"] == REAL_DIFFERENCE for d in disagreements),
        "tie_tolerance": tie_tolerance,
        "routes_agree": hf["routes"] == vl["routes"],
        "hf_s": {"load": round(hf["load_s"], 2), "eval": round(hf["eval_s"], 2)},
        "vllm_s": {"load": round(vl["load_s"], 2), "eval": round(vl["eval_s"], 2)},
    }
