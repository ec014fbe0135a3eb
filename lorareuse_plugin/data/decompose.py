"""Explicit decomposition of a composed question into the two library members' own questions.

Read from the prompt text alone (what an lm-eval model sees), with the families' own templates:
"What is the capital of the country where A was born?" becomes the hop1 question about A, then
the hop2 question about hop1's answer. This is the "knowledge is in the library" control (and the
``chain`` baseline): if asking each member its own question composes, the knowledge needed is in
the library, and a reuse method that fails has failed to *combine* it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data import math_ks, twohop
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world.facts import real_facts


@dataclass(frozen=True)
class Decomposition:
    """Ask ``members[0]`` ``first``; ask ``members[1]`` ``second(answer1)``; the final answer is
    the second answer, and ``chain(answer1, answer2)`` the worked chain in the tasks' CoT format."""

    members: tuple[str, str]
    first: str
    second: Callable[[str], str]
    chain: Callable[[str, str], str]


def template_pattern(template: str) -> re.Pattern[str]:
    """A template's regex: one named group per field, a field that repeats must repeat its text."""
    parts, seen = [], set()
    for p in re.split(r"(\{\w+\})", template):
        if p.startswith("{"):
            parts.append(f"(?P={p[1:-1]})" if p[1:-1] in seen else f"(?P<{p[1:-1]}>.+?)")
            seen.add(p[1:-1])
        else:
            parts.append(re.escape(p))
    return re.compile("".join(parts) + "$")


def question_of(prompt: str) -> str:
    """The question of a direct, CoT or in-context prompt ("...Q: <question>\\nA:")."""
    q = prompt.rsplit("Q: ", 1)[-1]
    q = q.rsplit("\nA:", 1)[0].strip()
    return q[: -len(fmt.COT_CUE)].rstrip() if q.endswith(fmt.COT_CUE.strip()) else q


def _twohop(question: str) -> Decomposition | None:
    for template in twohop.TWOHOP_QUESTIONS:
        m = template_pattern(template).match(question)
        if m:
            return _twohop_about(m["a"])
    return None


def _twohop_about(a: str) -> Decomposition:
    return Decomposition(
        ("hop1", "hop2"),
        twohop.HOP1_QUESTIONS[0].format(a=a),
        lambda b: twohop.HOP2_QUESTIONS[0].format(b=b),
        lambda b, c: fmt.cot_text(twohop.chain_steps(a, b, c), c),
    )


def singular(plural: str) -> str:
    for o in real_facts().objects:
        if o.plural == plural:
            return o.singular
    return plural[:-1] if plural.endswith("s") else plural  # fictional creatures: name + "s"


def _math_ks(question: str) -> Decomposition | None:
    for template in math_ks.COMPOSED_QUESTIONS:
        m = template_pattern(template).match(question)
        if m and m["k"].isdigit():
            return _math_ks_about(m["part"], int(m["k"]), m["p"])
    return None


def _math_ks_about(part: str, k: int, plural: str) -> Decomposition:
    s = singular(plural)

    def skill(n: str) -> str:
        return math_ks.SKILL_QUESTION.format(c=s, cs=plural, items=part, n=n.strip(), k=k)

    def chain(n: str, total: str) -> str:
        steps = [f"{fmt.article(s).capitalize()} {s} has {n} {part}.", f"{k} * {n} = {total}."]
        return fmt.cot_text(steps, total)

    return Decomposition(("knowledge", "skill"), math_ks.KNOW_QUESTIONS[1].format(part=part, s=s), skill, chain)


DECOMPOSERS: dict[str, Callable[[str], Decomposition | None]] = {"twohop": _twohop, "math_ks": _math_ks}


def decompose(family: str, prompt: str) -> Decomposition:
    """The decomposition of a composed prompt of ``family``; a one-line error otherwise."""
    if family not in DECOMPOSERS:
        raise ConfigError(f"family {family} has no explicit decomposition: use one of {', '.join(DECOMPOSERS)}")
    found = DECOMPOSERS[family](question_of(prompt))
    if found is None:
        raise ConfigError(f"cannot decompose {question_of(prompt)!r}: it is not a composed {family} question")
    return found


def member_asked(family: str, question: str) -> int | None:
    """0 / 1 when ``question`` is the first / second member's own question (a probe), else None."""
    own = {
        "twohop": (twohop.HOP1_QUESTIONS, twohop.HOP2_QUESTIONS),
        "math_ks": (math_ks.KNOW_QUESTIONS, (math_ks.SKILL_QUESTION,)),
    }.get(family, ((), ()))
    for member, templates in enumerate(own):
        if any(template_pattern(t).match(question) for t in templates):
            return member
    return None
