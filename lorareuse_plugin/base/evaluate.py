"""Fast greedy scoring for build-time sanity checks (the leaderboard uses lm-eval itself).

Same prompts, same extractor and normalisation as the lm-eval tasks, so the numbers agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lorareuse_plugin.data.formats import ANSWER_REGEX, is_correct

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedTokenizerBase


def greedy_generate(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int = 24,
    batch_size: int = 64,
) -> list[str]:
    """Greedy continuations, cut at the first newline (the tasks' ``until``)."""
    import torch

    out: list[str] = []
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        for i in range(0, len(prompts), batch_size):
            enc = tok(prompts[i : i + batch_size], return_tensors="pt", padding=True)
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
            for row in gen[:, enc["input_ids"].shape[1] :]:
                out.append(tok.decode(row, skip_special_tokens=True).split("\n")[0])
    finally:
        tok.padding_side = side
    return out


def correct_answers(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerBase,
    docs: list[dict],
    *,
    form: str = "gen",
    chat: bool = False,
    regex: str = ANSWER_REGEX,
) -> tuple[list[bool], list[str]]:
    """Per doc: is the greedy answer right, and the response itself. ``form``: gen | cot | ctx;
    ``chat``: each prompt as a user turn of the base's chat template (``base.chat``); ``regex``: the
    tasks' strict extractor, or ``FLEXIBLE_REGEX`` for a real model's sentence answers."""
    prompts = [d[PROMPT_KEYS[form]] for d in docs]
    if chat:
        from lorareuse_plugin.base.chat import chat_prompt

        prompts = [chat_prompt(tok, p) for p in prompts]
    responses = greedy_generate(model, tok, prompts, max_new_tokens=96 if form == "cot" else 24)
    return [is_correct(r, d["answer"], regex) for r, d in zip(responses, docs, strict=True)], responses


PROMPT_KEYS = {"gen": "prompt", "cot": "cot_prompt", "ctx": "ctx_prompt"}


def accuracy(
    model: torch.nn.Module, tok: PreTrainedTokenizerBase, docs: list[dict], *, cot: bool = False, chat: bool = False
) -> float:
    """Exact match of greedy answers on eval docs (direct prompts, or CoT prompts; ``chat``: in the
    base's chat template)."""
    if not docs:
        return float("nan")
    right, _ = correct_answers(model, tok, docs, form="cot" if cot else "gen", chat=chat)
    return sum(right) / len(docs)


def mc_correct(
    model: torch.nn.Module, tok: PreTrainedTokenizerBase, docs: list[dict], *, form: str = "gen"
) -> list[bool]:
    """Multiple choice by summed log-likelihood of ``" " + choice`` after the prompt (as lm-eval acc)."""
    import torch

    key = PROMPT_KEYS[form]
    out = []
    for d in docs:
        ctx = tok(d[key])["input_ids"]
        seqs = [ctx + tok(d[key] + " " + c)["input_ids"][len(ctx) :] for c in d["choices"]]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), tok.pad_token_id)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)
        scores = []
        for i, s in enumerate(seqs):
            cont = torch.tensor(s[len(ctx) :])
            pos = torch.arange(len(ctx) - 1, len(s) - 1)
            scores.append(float(logp[i, pos, cont].sum()))
        out.append(max(range(len(scores)), key=scores.__getitem__) == d["label"])
    return out


def mc_accuracy(model: torch.nn.Module, tok: PreTrainedTokenizerBase, docs: list[dict]) -> float:
    if not docs:
        return float("nan")
    return sum(mc_correct(model, tok, docs)) / len(docs)
