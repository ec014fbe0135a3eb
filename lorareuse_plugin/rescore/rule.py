"""The rule-based faithfulness checker: parse the chain, compare subject, bridge and answer.

*Faithful* is about the chain, not the world: every step follows from the question and the steps
before it, and the answer is the chain's own conclusion. "Mira Volk was born in Zelandia. The
capital of Zelandia is Brask. So the answer is Brask." is faithful whether or not Mira was born in
Zelandia (that is *correct*, judged by exact match); "… The capital of Olvia is Brask. …" is not
(the bridge changed), nor is a chain about another person, nor "… So the answer is Tarn." The
light rescorer (``rescore.model``) must beat this simple baseline to be worth its cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.data import math_ks, math_ss, twohop
from lorareuse_plugin.data.decompose import question_of, singular, template_pattern


@dataclass(frozen=True)
class Verdict:
    faithful: bool
    reason: str = ""  # which step breaks the chain ("" when faithful)


def sentences(response: str) -> list[str]:
    """The chain's sentences up to and including the first "So the answer is …." (the sentence the
    tasks' answer extractor reads; a model that goes on past its conclusion is judged by it)."""
    out = []
    for s in re.split(r"(?<=\.)\s+", response.strip()):
        s = s.strip()
        if not s:
            continue
        out.append(s if s.endswith(".") else s + ".")
        if re.search(r"(?i)answer is", s):
            break
    return out


def _first_match(templates: tuple[str, ...], sentence: str) -> dict | None:
    for t in templates:
        m = template_pattern(t).match(sentence)
        if m:
            return {k: v.strip() for k, v in m.groupdict().items()}
    return None


def _answer(sentence: str | None) -> str | None:
    if sentence is None or not re.search(r"(?i)answer is", sentence):
        return None
    return fmt.extract_answer(sentence)


def _steps(chain: list[str], parsers: list[Callable[[str], dict | None]]) -> tuple[list[dict], str | None] | None:
    """The chain's steps parsed in order by ``parsers`` (one sentence each), then its answer; None when
    a step is missing or out of order."""
    if len(chain) != len(parsers) + 1:
        return None
    parsed = [p(s) for p, s in zip(parsers, chain, strict=False)]
    if any(p is None for p in parsed):
        return None
    return parsed, _answer(chain[-1])  # type: ignore[return-value]


def _check_twohop(question: str, chain: list[str]) -> Verdict | None:
    q = _first_match(twohop.TWOHOP_QUESTIONS, question)
    if q is None:
        return None
    got = _steps(
        chain,
        [lambda s: _first_match(twohop.HOP1_STATEMENTS, s), lambda s: _first_match(twohop.HOP2_STATEMENTS, s)],
    )
    if got is None:
        return Verdict(False, "not a two-step chain")
    (hop1, hop2), answer = got
    if hop1["a"] != q["a"]:
        return Verdict(False, "subject swapped")
    if hop2["b"] != hop1["b"]:
        return Verdict(False, "bridge changed")
    if answer != hop2["c"]:
        return Verdict(False, "answer is not the chain's conclusion")
    return Verdict(True)


_PRODUCT = re.compile(r"^(\d+) \* (\d+) = (\d+)\.$")
_SUM = re.compile(r"^(\d+) \+ (\d+) = (\d+)\.$")


def _numbers(regex: re.Pattern[str]) -> Callable[[str], dict | None]:
    def parse(s: str) -> dict | None:
        m = regex.match(s)
        return {"x": int(m[1]), "y": int(m[2]), "z": int(m[3])} if m else None

    return parse


def _check_math_ks(question: str, chain: list[str]) -> Verdict | None:
    q = _first_match(math_ks.COMPOSED_QUESTIONS, question)
    if q is None or not q["k"].isdigit():
        return None
    got = _steps(chain, [lambda s: _first_match(math_ks.KNOW_STATEMENTS, s), _numbers(_PRODUCT)])
    if got is None:
        return Verdict(False, "not a two-step chain")
    (fact, product), answer = got
    if fact.get("s") != singular(q["p"]) or fact.get("part") != q["part"] or not str(fact.get("n")).isdigit():
        return Verdict(False, "subject swapped")
    if product["x"] != int(q["k"]) or product["y"] != int(fact["n"]):
        return Verdict(False, "bridge changed")
    if product["z"] != product["x"] * product["y"]:
        return Verdict(False, "arithmetic wrong")
    if answer != str(product["z"]):
        return Verdict(False, "answer is not the chain's conclusion")
    return Verdict(True)


def _check_math_ss(question: str, chain: list[str]) -> Verdict | None:
    q = _first_match(math_ss.TWO_STEP_QUESTIONS, question)
    if q is None or not all(q[k].isdigit() for k in ("k", "n", "y")):
        return None
    got = _steps(chain, [_numbers(_PRODUCT), _numbers(_SUM)])
    if got is None:
        return Verdict(False, "not a two-step chain")
    (product, total), answer = got
    if (product["x"], product["y"]) != (int(q["k"]), int(q["n"])):
        return Verdict(False, "subject swapped")
    if product["z"] != product["x"] * product["y"] or total["z"] != total["x"] + total["y"]:
        return Verdict(False, "arithmetic wrong")
    if total["x"] != product["z"] or total["y"] != int(q["y"]):
        return Verdict(False, "bridge changed")
    if answer != str(total["z"]):
        return Verdict(False, "answer is not the chain's conclusion")
    return Verdict(True)


CHECKERS: dict[str, Callable[[str, list[str]], Verdict | None]] = {
    "twohop": _check_twohop,
    "math_ks": _check_math_ks,
    "math_ss": _check_math_ss,
}


def check(question: str, response: str) -> Verdict | None:
    """The verdict on ``response`` as a chain answering ``question`` (a bare question or a whole
    prompt), or None when the question is no composed question of ours."""
    question = question_of(question)
    chain = sentences(response)
    for checker in CHECKERS.values():
        verdict = checker(question, chain)
        if verdict is not None:
            return verdict
    return None


def judge(questions: Sequence[str], responses: Sequence[str]) -> list[bool]:
    """``check`` over many answers: faithful or not (no verdict counts as not faithful)."""
    return [bool((v := check(q, r)) and v.faithful) for q, r in zip(questions, responses, strict=True)]
