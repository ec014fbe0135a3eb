"""Per-item outcomes of one run, read back from the samples lm-eval wrote for it.

Paired tests, cluster intervals and chance levels all need the items, not the task mean. Items
are clustered by the fact they share: the bridge (``intermediate``: the country of a two-hop
chain, the count of a math problem) when the document has one, else the gold answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Items:
    """One run's test items of one task, in document order."""

    doc_ids: tuple[int, ...]
    correct: tuple[int, ...]
    clusters: tuple[str, ...]
    answers: tuple[str, ...]
    in_prompt_choices: tuple[int, ...]  # how many of the doc's MC choices the prompt itself states
    n_choices: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.doc_ids)

    def to_json(self) -> dict:
        return {"doc_ids": list(self.doc_ids), "correct": list(self.correct), "clusters": list(self.clusters)}


def _stated(choice: str, prompt: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(choice)}(?!\w)", prompt) is not None


def read_items(samples: Path, metric: str) -> Items:
    """Items of ``samples_<task>.jsonl`` scored by ``metric`` (``exact_match`` or ``acc``)."""
    rows = []
    for line in samples.read_text().splitlines():
        s = json.loads(line)
        doc = s["doc"]
        prompt = s["arguments"][0][0] if s.get("arguments") else ""
        choices = [str(c) for c in doc.get("choices", [])]
        rows.append(
            (
                int(s["doc_id"]),
                int(float(s[metric]) > 0.5),
                str(doc.get("intermediate") or doc.get("answer")),
                str(doc.get("answer")),
                sum(_stated(c, prompt) for c in choices),
                len(choices),
            )
        )
    rows.sort()
    cols = list(zip(*rows, strict=True)) if rows else [()] * 6
    return Items(*(tuple(c) for c in cols))
