"""``ensemble``: an output-level mixture — the experts vote with their next-token distributions.

At every position the served distribution is p(x) = Σ w_i p_i(x) (uniform weights by default, or
``weights=``); log-likelihoods are log Σ w_i p_i of each continuation token, generation is greedy on
p. Nothing is merged: each expert runs its own forward pass (cost: one pass per expert per token).
It needs every expert's distribution at every step, which vLLM's one-LoRA-per-request serving does
not give: ``lorareuse-hf`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.params import NoParams

if TYPE_CHECKING:  # pragma: no cover
    import torch

Params = NoParams


def check_spec(spec) -> None:
    if len(spec.experts) < 1:
        raise ConfigError("ensemble needs at least one expert: experts=hop1+hop2")


def mixture_logprobs(model, experts, weights, input_ids, attention_mask=None, position_ids=None) -> torch.Tensor:
    """log Σ w_i softmax(logits_i) over ``model``'s named PEFT adapters (weights normalised)."""
    import torch

    total = None
    norm = sum(weights)
    with torch.no_grad():
        for expert, w in zip(experts, weights, strict=True):
            model.set_adapter(expert)
            logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
            p = (w / norm) * torch.softmax(logits.float(), dim=-1)
            total = p if total is None else total + p
    return torch.log(total.clamp_min(torch.finfo(torch.float32).tiny))


def greedy(model, experts, weights, context, max_length: int, criteria, eos_id, pad_id, attention_mask=None):
    """Greedy decoding on the mixture, left-padded batch in, ``context + generated`` out (as HF's
    ``generate`` returns it). Each expert keeps its own KV cache: after the prompt, a step costs one
    one-token forward pass per expert."""
    import torch

    ids = context
    mask = attention_mask if attention_mask is not None else torch.ones_like(ids)
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    caches: list = [None] * len(experts)
    step_ids = ids
    norm = sum(weights)
    with torch.no_grad():
        while ids.shape[1] < max_length:
            positions = (mask.long().cumsum(-1) - 1).clamp_min(0)[:, -step_ids.shape[1] :]
            total = None
            for k, (expert, w) in enumerate(zip(experts, weights, strict=True)):
                model.set_adapter(expert)
                out = model(
                    input_ids=step_ids,
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=caches[k],
                    use_cache=True,
                )
                caches[k] = out.past_key_values
                p = (w / norm) * torch.softmax(out.logits[:, -1].float(), dim=-1)
                total = p if total is None else total + p
            nxt = total.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(nxt[:, None])], dim=1)
            step_ids = nxt[:, None]
            if eos_id is not None:
                done |= nxt == eos_id
            if bool(done.all()) or bool(torch.as_tensor(criteria(ids, None)).all()):
                break
    return ids
