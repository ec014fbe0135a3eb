"""The leakage check: no test question, and no test answer pair, in any split an expert trains on.

A test question leaks if its text appears inside a training text. An answer pair leaks if every
string of one of the family's ``leak_keys`` (e.g. the test person and their capital) appears as a
whole word in one training text — that text would teach the composed answer directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lorareuse_plugin.data.family import Family, FamilyData
from lorareuse_plugin.errors import LeakageError


@dataclass(frozen=True)
class Leak:
    split: str
    record_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.split}/{self.record_id}: {self.reason}"


def _word(s: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(s) + r"(?!\w)")


def find_leaks(family: Family, data: FamilyData, exempt: tuple[str, ...] = ()) -> list[Leak]:
    """Every leak in the training splits of ``data``, except splits named in ``exempt`` and the
    family's contaminated-by-design splits (the ``ac`` expert), which are allowed by name only."""
    questions = [doc["question"] for doc in data.splits["test"]]
    key_patterns = [(keys, [_word(k) for k in keys]) for keys in data.leak_keys]
    verdicts: dict[str, str | None] = {}  # union/oracle repeat member records: check each text once
    leaks: list[Leak] = []
    for split in family.train_splits:
        if split in exempt or split in family.contaminated:
            continue
        for rec in data.splits[split]:
            text = rec["text"]
            if text not in verdicts:
                verdicts[text] = _verdict(text, questions, key_patterns)
            if verdicts[text]:
                leaks.append(Leak(split, rec["id"], verdicts[text]))  # type: ignore[arg-type]
    return leaks


def _verdict(text: str, questions: list[str], key_patterns: list) -> str | None:
    for q in questions:
        if q in text:
            return f"contains test question {q!r}"
    for keys, patterns in key_patterns:
        if all(p.search(text) for p in patterns):
            return f"states test answer pair {keys!r}"
    return None


def check_leakage(family: Family, data: FamilyData, exempt: tuple[str, ...] = ()) -> None:
    leaks = find_leaks(family, data, exempt)
    if leaks:
        more = f" (and {len(leaks) - 1} more)" if len(leaks) > 1 else ""
        raise LeakageError(
            f"test data leaks into expert training data: {leaks[0]}{more}; "
            "regenerate with another seed or fix the generator"
        )
