"""The base model's positive controls, measured by every base build.

- **held-out chain (go/no-go)**: the chain-of-thought procedure on background people whose facts
  are in the corpus but whose chain never is — did the base learn a procedure or memorise chains?
- **in-context (F)**: both facts of a fictional test chain (plus a distractor chain) stated in
  the prompt — can the base combine facts it can see? Gates: gen ≥ 0.8, multiple choice ≥ 0.9.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lorareuse_plugin.base.evaluate import correct_answers, mc_correct
from lorareuse_plugin.control import Control
from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data import twohop
from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.stats import Proportion
from lorareuse_plugin.world.background import background_world

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedTokenizerBase

CONTEXT_GEN_GOAL = 0.8
CONTEXT_MC_GOAL = 0.9
HELD_OUT_GOAL = 0.8


def held_out_docs() -> list[dict]:
    """CoT docs over every held-out background person (facts in the corpus, chain never)."""
    world = background_world()
    docs = []
    for p in world.held_out_people:
        question = twohop.TWOHOP_QUESTIONS[0].format(a=p.name)
        docs.append({"cot_prompt": fmt.cot_prompt(question), "answer": world.capital_of[p.birth_country]})
    return docs


def mc_guess(docs: list[dict]) -> float:
    return sum(1 / len(d["choices"]) for d in docs) / len(docs)


def base_controls(model: torch.nn.Module, tok: PreTrainedTokenizerBase, *, seed: int = 0) -> list[Control]:
    """The three base controls on the default-size world of ``seed``."""
    return [held_out_control(model, tok), *in_context_controls(model, tok, seed=seed)]


def held_out_control(model: torch.nn.Module, tok: PreTrainedTokenizerBase) -> Control:
    """Our corpus's held-out people: only meaningful on a base pretrained on that corpus."""
    docs = held_out_docs()
    right, _ = correct_answers(model, tok, docs, form="cot")
    n_answers = len({d["answer"] for d in docs})
    return Control(
        "held-out chain, CoT (go/no-go)",
        "base, background people without a chain in the corpus",
        Proportion(sum(right), len(docs)),
        HELD_OUT_GOAL,
        False,
        1 / n_answers,
    )


def in_context_controls(
    model: torch.nn.Module, tok: PreTrainedTokenizerBase, *, seed: int = 0, flexible: bool = False
) -> list[Control]:
    """Both facts of a fictional chain (and a distractor's) in the prompt, answered by generation and
    by multiple choice: can this base combine facts it can see? Runs on any base; ``flexible`` scores
    generation with the tasks' flexible filter (a real model answers in sentences)."""
    controls = []
    regex, scored = (fmt.FLEXIBLE_REGEX, "gen, flexible") if flexible else (fmt.ANSWER_REGEX, "gen")
    for family in ("twohop", "math_ks"):
        test = build_dataset(make_spec(family, "F", seed)).splits["test"]
        right, _ = correct_answers(model, tok, test, form="ctx", regex=regex)
        controls.append(
            Control(
                f"in-context ({family} F, {scored})",
                "base, both facts + a distractor's in the prompt",
                Proportion(sum(right), len(test)),
                CONTEXT_GEN_GOAL,
                family == "twohop",
                0.5,  # copying one of the two answers the context offers
            )
        )
        mc = mc_correct(model, tok, test, form="ctx")
        controls.append(
            Control(
                f"in-context ({family} F, MC)",
                "base, both facts + a distractor's in the prompt",
                Proportion(sum(mc), len(test)),
                CONTEXT_MC_GOAL,
                family == "twohop",
                mc_guess(test),
            )
        )
    return controls
