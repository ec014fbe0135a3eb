"""Train one LoRA expert with PEFT on one training split.

Statements are learned whole; for QA and chain-of-thought records only the answer is learned
(the prompt is masked), as in instruction tuning. Only answers end in EOS: a one-sentence
statement followed by EOS, seen for 40 epochs, teaches the model to stop after its first
sentence — and a chain of thought is several sentences (measured: every union-expert chain
stopped after one sentence when statements ended in EOS).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from lorareuse_plugin.library.recipe import ExpertRecipe

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedTokenizerBase


def encode_records(
    tok: PreTrainedTokenizerBase, records: list[dict], *, chat: bool = False
) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per record; labels are -100 on the prompt of QA/CoT records and on the
    special tokens the tokenizer adds (our ``<s>``; nothing for BOS-less tokenizers such as Qwen's or
    GPT-2's, whose first real token is then learned, not masked). ``chat``: QA/CoT prompts become a
    user turn of the base's chat template and the answer the assistant's reply (statements stay plain
    text: they are documents, not turns)."""
    from lorareuse_plugin.base.chat import chat_prompt, special_tokens_for

    added = len(tok("")["input_ids"])  # what the tokenizer puts before every text
    out = []
    for r in records:
        if r["kind"] == "statement":
            ids = tok(r["text"])["input_ids"]
            out.append((ids, [-100] * added + ids[added:]))
            continue
        prompt_text, answer = r["prompt"], r["text"][len(r["prompt"]) :]
        if chat:  # lm-eval puts no target delimiter after a chat template's generation prompt
            prompt_text, answer = chat_prompt(tok, prompt_text), answer.lstrip()
        special = special_tokens_for(tok, prompt_text)
        ids = tok(prompt_text + answer, add_special_tokens=special)["input_ids"]
        prompt = tok(prompt_text, add_special_tokens=special)["input_ids"]
        if ids[: len(prompt)] != prompt:
            # a BPE merge across the prompt/answer boundary: the answer follows the prompt's own tokens,
            # as it does when the model generates after the prompt
            ids = prompt + tok(answer, add_special_tokens=False)["input_ids"]
        ids = ids + [tok.eos_token_id]
        out.append((ids, [-100] * len(prompt) + ids[len(prompt) :]))
    return out


def _batches(encoded, batch_size: int, pad_id: int, seed: int, epoch: int, device):
    import torch

    order = list(range(len(encoded)))
    random.Random(f"{seed}-{epoch}").shuffle(order)
    for i in range(0, len(order), batch_size):
        rows = [encoded[j] for j in order[i : i + batch_size]]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, (x, y) in enumerate(rows):
            ids[k, : len(x)] = torch.tensor(x)
            labels[k, : len(y)] = torch.tensor(y)
            mask[k, : len(x)] = 1
        yield {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def train_expert(
    base_model: torch.nn.Module,
    tok: PreTrainedTokenizerBase,
    records: list[dict],
    expert: ExpertRecipe,
    *,
    seed: int,
    progress: bool = True,
):
    """Wrap ``base_model`` in a fresh LoRA (seeded init), train it, return (peft_model, final_loss).

    The base weights are never modified; call ``peft_model.unload()`` to get the base back.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from lorareuse_plugin.base.trainer import fit
    from lorareuse_plugin.library.targets import resolve_targets
    from lorareuse_plugin.world.seeding import derive_seed

    torch.manual_seed(derive_seed("expert", expert.name, seed) % (2**31))
    config = LoraConfig(
        r=expert.rank,
        lora_alpha=expert.alpha,
        target_modules=list(resolve_targets(base_model, expert.targets)),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        # GPT-2-style Conv1D layers store their weight transposed (PEFT warns, then sets it itself)
        fan_in_fan_out=any(type(m).__name__ == "Conv1D" for m in base_model.modules()),
    )
    model = get_peft_model(base_model, config)
    encoded = encode_records(tok, records, chat=expert.chat)
    device = next(base_model.parameters()).device
    steps = -(-len(encoded) // expert.batch_size)
    loss = fit(
        model,
        lambda e: _batches(encoded, expert.batch_size, tok.pad_token_id, seed, e, device),
        epochs=expert.epochs,
        steps_per_epoch=steps,
        lr=expert.lr,
        desc=f"expert {expert.name}",
        progress=progress,
    )
    return model, loss
