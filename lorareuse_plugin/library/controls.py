"""A library's positive controls, measured by every ``library build``.

- **decomposition (gate, ≥ 0.9)**: ask the first member its own question about the test entity,
  put its answer into the second member's question, ask the second member. If this composes, the
  knowledge a reuse method needs is in the library.
- **union, chain of thought (reported; goal ≥ 0.8)**: one LoRA trained on both members' data,
  asked to think step by step — does joint training compose? The paper's question hinges on it.

An expert trained with ``chat: true`` is asked in the base's chat template (``base.chat``), as it
was trained and as lm-eval's ``--apply_chat_template`` asks it; a plain prompt would measure a
format the expert never saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lorareuse_plugin.base.evaluate import correct_answers, greedy_generate
from lorareuse_plugin.control import Control
from lorareuse_plugin.data.decompose import DECOMPOSERS, decompose
from lorareuse_plugin.data.formats import is_correct
from lorareuse_plugin.stats import Proportion

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedTokenizerBase

DECOMPOSITION_GOAL = 0.9
UNION_COT_GOAL = 0.8


def answer_guess(docs: list[dict]) -> float:
    """The score of always giving the commonest answer (a right-type guess)."""
    from collections import Counter

    return Counter(d["answer"] for d in docs).most_common(1)[0][1] / len(docs) if docs else 0.0


def decomposition_answers(
    model, tok: PreTrainedTokenizerBase, family: str, docs: list[dict], chat: dict[str, bool] | None = None
) -> list[str]:
    """The final answers of the explicit decomposition; ``model`` is a PeftModel holding both
    members as named adapters; ``chat``: which members were trained in the chat template."""
    from lorareuse_plugin.base.known import probe_prompt  # Q: …\nA:, or that as a chat user turn

    chat = chat or {}
    steps = [decompose(family, d["prompt"]) for d in docs]
    first_name, second_name = steps[0].members
    model.set_adapter(first_name)
    first_prompts = [probe_prompt(tok, s.first, chat.get(first_name, False)) for s in steps]
    first = [a.strip() for a in greedy_generate(model, tok, first_prompts)]
    model.set_adapter(second_name)
    second_chat = chat.get(second_name, False)
    second_prompts = [probe_prompt(tok, s.second(b), second_chat) for s, b in zip(steps, first, strict=True)]
    return [a.strip() for a in greedy_generate(model, tok, second_prompts)]


def library_controls(
    base_model: torch.nn.Module,
    tok: PreTrainedTokenizerBase,
    root: Path,
    family: str,
    familiarity: str | None,
    members: tuple[str, ...],
    experts: dict[str, str],
    test: list[dict],
    chat: dict[str, bool] | None = None,
) -> tuple[list[Control], dict]:
    """Controls on the library at ``root`` (``experts``: name -> dir relative to ``root``; ``chat``:
    the experts trained in the chat template). Returns the controls and per-control samples (first
    outputs) for the record."""
    chat = chat or {}
    from peft import PeftModel

    label = f"{family}{' ' + familiarity if familiarity else ''}"
    controls: list[Control] = []
    samples: dict[str, list[str]] = {}
    wanted = [m for m in members if m in experts] + (["union"] if "union" in experts else [])
    if not wanted or family not in DECOMPOSERS:
        return controls, samples
    model = PeftModel.from_pretrained(base_model, str(root / experts[wanted[0]]), adapter_name=wanted[0])
    try:
        for name in wanted[1:]:
            model.load_adapter(str(root / experts[name]), adapter_name=name)
        model.eval()
        if all(m in experts for m in members):
            answers = decomposition_answers(model, tok, family, test, chat)
            right = [is_correct(a, d["answer"]) for a, d in zip(answers, test, strict=True)]
            controls.append(
                Control(
                    f"decomposition ({label})",
                    f"{members[0]} expert -> {members[1]} expert",
                    Proportion(sum(right), len(test)),
                    DECOMPOSITION_GOAL,
                    True,
                    answer_guess(test),
                )
            )
            samples["decomposition"] = answers[:5]
        if "union" in experts:
            model.set_adapter("union")
            right, responses = correct_answers(model, tok, test, form="cot", chat=chat.get("union", False))
            controls.append(
                Control(
                    f"union expert, CoT ({label})",
                    "expert:union (both members' data, one LoRA)",
                    Proportion(sum(right), len(test)),
                    UNION_COT_GOAL,
                    False,
                    answer_guess(test),
                )
            )
            samples["union_cot"] = responses[:5]
            samples["union_cot_past_first_sentence"] = [
                round(sum(r.count(".") >= 2 for r in responses) / len(responses), 4)  # type: ignore[list-item]
            ]
    finally:
        model.unload()
    return controls, samples
