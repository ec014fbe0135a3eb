"""Prompts in a base's chat template, rendered exactly as lm-eval's ``--apply_chat_template`` does
for our zero-shot tasks: the task's prompt text as one user turn, then the generation prompt.

Training (``chat: true`` experts), own-probe scoring and familiarity all go through here, so the
text an expert learned on is the text lm-eval later shows it.
"""

from __future__ import annotations

from lorareuse_plugin.errors import ConfigError


def has_chat_template(tok) -> bool:
    return bool(getattr(tok, "chat_template", None))


def chat_prompt(tok, prompt: str) -> str:
    """``prompt`` (e.g. ``Q: …\\nA:``) as a user turn of ``tok``'s chat template, ready for the answer."""
    if not has_chat_template(tok):
        raise ConfigError(
            "this base's tokenizer has no chat template: leave out chat (chat: true / --chat) for this base"
        )
    return tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def special_tokens_for(tok, text: str) -> bool:
    """Whether to let the tokenizer add its special tokens to ``text``: not when the text already
    starts with BOS (a rendered chat template often does) — lm-eval's rule, so no BOS is doubled."""
    bos = getattr(tok, "bos_token", None)
    return not (bos and text.startswith(bos))
