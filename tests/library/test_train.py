"""Answer-only loss masking on real tokenizers: ours (``<s>`` before every text) and a BOS-less one
(as Qwen's or GPT-2's): every prompt token masked, every answer token learned, nothing shifted."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.library.train import encode_records

TEXTS = ["Q: Where was Mira Volk born?\nA: Zelandia", "The capital of Zelandia is Orvik."] * 20
RECORDS = [
    fmt.statement("s", "The capital of Zelandia is Orvik."),
    fmt.qa("q", "Where was Mira Volk born?", "Zelandia"),
    fmt.cot("c", "What is the capital of the country where Mira Volk was born?", "Zelandia. So the answer is Orvik."),
]


def _tokenizer(bos: bool):
    from tokenizers import processors

    from lorareuse_plugin.base.tokenizer import train_tokenizer

    tok = train_tokenizer(TEXTS, vocab_size=300)
    if not bos:
        tok._tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B", special_tokens=[])
    return tok


@pytest.mark.parametrize("bos", [True, False], ids=["bos", "no-bos"])
def test_masking_keeps_every_answer_token_and_masks_every_prompt_token(bos: bool) -> None:
    tok = _tokenizer(bos)
    assert (tok("x")["input_ids"][0] == tok.bos_token_id) is bos  # the tokenizer really is (not) adding <s>
    statement, qa, cot = encode_records(tok, RECORDS)
    ids, labels = statement
    learned = [t for t in labels if t != -100]
    assert tok.decode(learned) == RECORDS[0]["text"]  # the whole statement, its first word included
    assert labels.count(-100) == (1 if bos else 0)
    for (ids, labels), record in ((qa, RECORDS[1]), (cot, RECORDS[2])):
        masked = [t for t, y in zip(ids, labels, strict=True) if y == -100]
        learned = [y for y in labels if y != -100]
        assert labels[: len(masked)] == [-100] * len(masked)  # the prompt, then only answer
        assert tok.decode(masked, skip_special_tokens=True) == record["prompt"]
        assert tok.decode(learned[:-1]) == record["completion"] and learned[-1] == tok.eos_token_id


def test_chat_masking_learns_the_reply_after_the_templates_generation_prompt() -> None:
    from lorareuse_plugin.base.chat import chat_prompt

    tok = _tokenizer(True)
    tok.chat_template = (
        Path(__file__).parents[2] / "lorareuse_plugin/base/shipped/default/chat_template.jinja"
    ).read_text()
    for (ids, labels), record in zip(encode_records(tok, RECORDS[1:], chat=True), RECORDS[1:], strict=True):
        masked = [t for t, y in zip(ids, labels, strict=True) if y == -100]
        learned = [y for y in labels if y != -100]
        rendered = chat_prompt(tok, record["prompt"])
        assert rendered != record["prompt"] and rendered.endswith("A:")  # the template really wrapped it
        assert tok.decode(masked, skip_special_tokens=True) == rendered
        assert tok.decode(learned[:-1]) == record["completion"].lstrip() and learned[-1] == tok.eos_token_id
    ((ids, labels),) = encode_records(tok, RECORDS[:1], chat=True)  # statements stay plain documents
    assert tok.decode([y for y in labels if y != -100]) == RECORDS[0]["text"]


def test_chat_is_a_recipe_switch_that_changes_the_key_only_when_on() -> None:
    from lorareuse_plugin.errors import ConfigError
    from lorareuse_plugin.library.recipe import ExpertRecipe, parse_recipe

    raw = {"data": {"family": "twohop", "familiarity": "F", "n_test": 12, "n_target": 6}, "experts": {"hop1": {}}}
    assert parse_recipe(raw).experts[0].chat is False
    assert "chat" not in ExpertRecipe("hop1", "hop1").hparams()  # old experts keep their keys
    on = parse_recipe({**raw, "defaults": {"chat": True}}).experts[0]
    assert on.chat is True and on.hparams()["chat"] is True
    with pytest.raises(ConfigError, match="chat: true"):
        parse_recipe({**raw, "defaults": {"chat": "yes"}})
