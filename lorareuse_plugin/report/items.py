"""Per-item outcomes of one run, read back from the samples lm-eval wrote for it.

Paired tests, cluster intervals and chance levels all need the items, not the task mean. Items
are clustered by the fact they share: the bridge (``intermediate``: the country of a two-hop
chain, the count of a math problem) when the document has one, else the gold answer (for a task
that is not ours: lm-eval's ``target``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lorareuse_plugin.errors import ConfigError


@dataclass(frozen=True)
class Items:
    """One run's test items of one task, in document order."""

    doc_ids: tuple[int, ...]
    correct: tuple[int, ...]
    clusters: tuple[str, ...]
    answers: tuple[str, ...]
    in_prompt_choices: tuple[int, ...]  # how many of the doc's MC choices the prompt itself states
    n_choices: tuple[int, ...]
    routes: tuple[str | None, ...] = ()  # the adapter a router served each doc with (our backends' log)
    questions: tuple[str, ...] = ()  # the doc's question (ours) or its prompt
    responses: tuple[str, ...] = ()  # what the model generated ("" for a log-likelihood task)

    @property
    def n(self) -> int:
        return len(self.doc_ids)

    def to_json(self) -> dict:
        return {"doc_ids": list(self.doc_ids), "correct": list(self.correct), "clusters": list(self.clusters)}


def _stated(choice: str, prompt: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(choice)}(?!\w)", prompt) is not None


def gold_text(target, args: list) -> str:
    """lm-eval's target as text: a multiple-choice target is the index of the gold choice, whose
    text is that request's continuation (so items cluster by answer, not by answer position)."""
    if len(args) > 1 and str(target).lstrip("-").isdigit() and 0 <= int(target) < len(args):
        return str(args[int(target)][1]).strip()
    return str(target)


def _generated(resps) -> str:
    """The generated text of a generation request (lm-eval logs ``[[text]]``), else ""."""
    first = resps[0] if isinstance(resps, list) and resps else None
    first = first[0] if isinstance(first, list) and first else first
    return first if isinstance(first, str) else ""


def read_items(samples: Path, metric: str, filt: str | None = None) -> Items:
    """Items of ``samples_<task>.jsonl`` scored by ``metric`` under filter ``filt`` (lm-eval writes one
    line per document and filter). A task that is not ours has no ``answer``/``choices`` fields of
    ours: its gold answer is lm-eval's ``target`` and a multiple-choice document has one request per
    choice."""
    rows = []
    for line in samples.read_text().splitlines():
        s = json.loads(line)
        if filt is not None and s.get("filter", filt) != filt:
            continue
        doc = s["doc"] if isinstance(s.get("doc"), dict) else {}
        args = s.get("arguments") or []
        prompt = args[0][0] if args and isinstance(args[0], list | tuple) else ""
        choices = [str(c) for c in doc.get("choices", [])] if isinstance(doc.get("choices"), list) else []
        answer = doc["answer"] if "answer" in doc else gold_text(s.get("target"), args)
        score = float(s[metric])
        if score not in (0.0, 1.0):
            raise ConfigError(
                f"{samples.name}: {metric}={score} is not a 0/1 item score; the leaderboard's intervals and paired "
                "tests need one (exact_match, acc): rank this task by such a metric (first in its metric_list)"
            )
        rows.append(
            (
                int(s["doc_id"]),
                int(score),
                str(doc.get("intermediate") or answer),
                str(answer),
                sum(_stated(c, prompt) for c in choices),
                len(choices) or (len(args) if len(args) > 1 else 0),
                s.get("lorareuse_expert"),
                str(doc.get("question") or prompt),
                _generated(s.get("resps")),
            )
        )
    rows.sort(key=lambda r: r[:6])
    cols = list(zip(*rows, strict=True)) if rows else [()] * 9
    return Items(*(tuple(c) for c in cols))
