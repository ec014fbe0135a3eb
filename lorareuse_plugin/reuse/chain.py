"""``chain``: explicit decomposition — the pipeline a practitioner who owns the prompts would build.

Ask the first expert the first member's own question about the test entity ("In which country was
A born?"), put its answer into the second member's question ("What is the capital of B?") and ask
the second expert. For a chain-of-thought task the answer is written as the worked chain ("A was
born in B. The capital of B is C. The answer is C."); for multiple choice the second expert scores
the choices after the second question. A probe (a member's own question) goes to that member.
Only our composed families can be decomposed (``data.decompose``); anything else is refused in
one line. The question is replaced *inside* the task's context, so few-shot examples, in-context
facts and a chat template stay as lm-eval rendered them.
"""

from __future__ import annotations

from dataclasses import dataclass

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.params import NoParams

Params = NoParams
FIRST_STEP_GEN = {"until": ["\n"], "max_gen_toks": 32, "do_sample": False}  # the member's one-line answer


def check_spec(spec) -> None:
    from lorareuse_plugin.data.decompose import DECOMPOSERS

    if len(spec.experts) != 2:
        raise ConfigError(
            f"chain asks two experts in turn, got {len(spec.experts)} ({'+'.join(spec.experts)}): "
            "name the first hop's expert first, e.g. experts=hop1+hop2"
        )
    if not spec.library.has_world:
        raise ConfigError(
            "chain decomposes our composed questions: it needs a library built by lorareuse, not foreign adapters"
        )
    family = spec.library.manifest["data"]["family"]
    if family not in DECOMPOSERS:
        raise ConfigError(f"chain: family {family} has no explicit decomposition (only {', '.join(DECOMPOSERS)})")


def _question_span(context: str) -> tuple[int, int]:
    """Where the last question of ``context`` is: after its last "Q: ", up to the "\\nA:" after it."""
    start = context.rfind("Q: ")
    end = context.find("\nA:", start)
    if start < 0 or end < 0:
        raise ConfigError(
            "chain: a request's context has no 'Q: …\\nA:' question: chain answers only our composed tasks"
        )
    return start + 3, end


def with_question(context: str, question: str) -> str:
    """``context`` with its last question replaced (any CoT cue after it dropped)."""
    start, end = _question_span(context)
    return context[:start] + question + context[end:]


@dataclass(frozen=True)
class ChainPlan:
    """How to answer one document: ``member`` (0/1) asked directly, or the two-step chain."""

    context: str
    member: int | None = None
    decomposition: object | None = None
    cot: bool = False

    def first_context(self) -> str:
        return with_question(self.context, self.decomposition.first)  # type: ignore[union-attr]

    def second_context(self, first_answer: str) -> str:
        return with_question(self.context, self.decomposition.second(first_answer.strip()))  # type: ignore[union-attr]

    def answer(self, first_answer: str, second_answer: str) -> str:
        """The generated text lm-eval scores: the second answer, or for CoT the worked chain."""
        if self.cot:
            return " " + self.decomposition.chain(first_answer.strip(), second_answer.strip())  # type: ignore[union-attr]
        return second_answer


def plan(family: str, context: str, task: str = "") -> ChainPlan:
    from lorareuse_plugin.data.decompose import DECOMPOSERS, member_asked, question_of

    start, end = _question_span(context)
    question = question_of(context)
    found = DECOMPOSERS[family](question)  # first: "capital of {b}" also matches a composed question
    if found is not None:
        cue = fmt.COT_CUE.strip()
        return ChainPlan(context, decomposition=found, cot=context[start:end].rstrip().endswith(cue))
    member = member_asked(family, question)
    if member is None:
        raise ConfigError(
            f"chain: {task or 'a task'} asks {question!r}, which is neither a composed {family} question nor a "
            "member's own: chain answers only its library's family (drop the task or use another method)"
        )
    return ChainPlan(context, member=member)
