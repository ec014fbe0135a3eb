"""One place for the text formats that training data and lm-eval prompts share.

A question becomes the prompt ``"Q: <question>\\nA:"``; the answer follows after one space. The
chain-of-thought form appends a cue to the question and ends its answer with
``"So the answer is <answer>."``, which the tasks' regex extractor reads.
"""

from __future__ import annotations

import random

COT_CUE = " Let's think step by step."


def qa_prompt(question: str) -> str:
    return f"Q: {question}\nA:"


def cot_prompt(question: str) -> str:
    return qa_prompt(question + COT_CUE)


def ctx_prompt(facts: list[str], question: str) -> str:
    """Facts stated in the prompt, then the question: tests reading, not remembering."""
    return " ".join(facts) + "\n" + qa_prompt(question)


def cot_text(steps: list[str], answer: str) -> str:
    """The gold reasoning: intermediate facts first, then the fixed answer phrase."""
    return " ".join(steps + [f"So the answer is {answer}."])


def statement(rec_id: str, text: str) -> dict:
    return {"id": rec_id, "kind": "statement", "prompt": "", "completion": text, "text": text}


def _prompted(rec_id: str, kind: str, prompt: str, answer: str) -> dict:
    completion = " " + answer
    return {"id": rec_id, "kind": kind, "prompt": prompt, "completion": completion, "text": prompt + completion}


def qa(rec_id: str, question: str, answer: str) -> dict:
    return _prompted(rec_id, "qa", qa_prompt(question), answer)


def cot(rec_id: str, question: str, reasoning: str) -> dict:
    return _prompted(rec_id, "cot", cot_prompt(question), reasoning)


def ctx_cot(rec_id: str, facts: list[str], question: str, reasoning: str) -> dict:
    """Chain of thought over facts stated in the prompt (the in-context CoT form)."""
    return _prompted(rec_id, "cot", ctx_prompt(facts, question + COT_CUE), reasoning)


def eval_doc(
    doc_id: str,
    question: str,
    answer: str,
    *,
    reasoning: str,
    choices: list[str],
    rnd: random.Random,
    intermediate: str = "",
    context: list[str] | None = None,
) -> dict:
    """An lm-eval document. ``choices`` holds the answer plus same-type distractors; they are
    shuffled here with the caller's seeded RNG so the label position carries no signal.
    ``context``: facts the in-context form states before the question (already in their order);
    without it ``ctx_prompt`` is the plain prompt."""
    options = list(dict.fromkeys([answer] + [c for c in choices if c != answer]))
    rnd.shuffle(options)
    return {
        "id": doc_id,
        "question": question,
        "prompt": qa_prompt(question),
        "cot_prompt": cot_prompt(question),
        "ctx_prompt": ctx_prompt(context, question) if context else qa_prompt(question),
        "answer": answer,
        "cot": reasoning,
        "intermediate": intermediate,
        "choices": options,
        "label": options.index(answer),
    }


def article(noun: str) -> str:
    """'a' or 'an' by spelling; good enough for our closed vocabulary."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def distractors(pool: list[str], answer: str, rnd: random.Random, k: int = 3) -> list[str]:
    """``k`` distinct members of ``pool`` other than ``answer``, drawn with ``rnd``."""
    candidates = sorted(set(pool) - {answer})
    return rnd.sample(candidates, min(k, len(candidates)))


def number_distractors(answer: int, candidates: list[int], rnd: random.Random, k: int = 3) -> list[str]:
    """Plausible wrong integers (from the caller's near-miss formulas), padded with answer±d."""
    pool = [c for c in dict.fromkeys(candidates) if c > 0 and c != answer]
    d = 1
    while len(pool) < k:
        for c in (answer + d, answer - d):
            if c > 0 and c != answer and c not in pool:
                pool.append(c)
        d += 1
    return [str(c) for c in rnd.sample(pool, k)]


# The answer extractor of every generation task (the YAML templates carry the same pattern; a test
# keeps them equal): the text after the first "answer is" (any case), else the first line, up to a
# period. The first, not the last: a model that goes on past its conclusion is judged by it.
ANSWER_REGEX = r"(?is)^\s*(?:.*?answer is:?\s*)?([^\n.]+)"
# The flexible extractor, reported beside the strict one (filter ``flexible``): a real model answers in
# a sentence ("The capital of Czechia is Prague.", "Mira Volk was born in Zelandia."), so after "answer
# is" as above, else the span after the first sentence's *last* "is/are/was/were/in", up to a period,
# comma or semicolon. A sentence that names the gold only as a distractor ("… is not Prague, it is
# Brno") yields the other name and is not counted.
FLEXIBLE_REGEX = r"(?is)^\s*(?:.*?answer is:?\s*|[^\n.]*\b(?:is|are|was|were|in)\s+)?([^\n.,;]+)"


def extract_answer(response: str, regex: str = ANSWER_REGEX) -> str:
    import re

    match = re.findall(regex, response)
    return match[0].strip() if match else "[invalid]"


def normalize(text: str) -> str:
    """As lm-eval's exact_match with ignore_case and ignore_punctuation."""
    import string

    return text.lower().translate(str.maketrans("", "", string.punctuation))


def is_correct(response: str, answer: str, regex: str = ANSWER_REGEX) -> bool:
    """As a task's exact_match under its strict (default) or ``FLEXIBLE_REGEX`` filter."""
    return normalize(extract_answer(response, regex)) == normalize(answer)
