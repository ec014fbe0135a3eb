"""Which real facts a base demonstrably knows, read from a ``lorareuse familiarity`` report.

On a real pretrained base, "R" (every hop real) must mean *real and known to this model*: a 135 M
model knows the birth country of 27 of our 264 people. A world built with known facts draws its R
people (both hops known) or H bridges (the capital known) only from them. The value is small and
hashable (it is part of a ``SplitSpec``) and self-contained: a library manifest records the known
facts themselves, so the world can be rebuilt without the report file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from lorareuse_plugin.errors import ConfigError

RELATIONS = ("birth_country", "capital", "part_count")
_FIX = "write one with `lorareuse familiarity --base BASE --out DIR` and pass DIR/familiarity.json"


@dataclass(frozen=True)
class KnownFacts:
    """The (relation, subject) pairs a base knows, and where that verdict came from."""

    facts: frozenset[tuple[str, str]]
    base: str  # the report's base record, as canonical JSON (hashable)
    prompt: str  # the format the facts were asked in: plain "Q: …\nA:" or the chat template
    report_sha256: str
    report: str = field(default="", compare=False)  # the path it was read from: for messages, not identity

    def knows(self, relation: str, subject: str) -> bool:
        return (relation, subject) in self.facts

    def count(self, relation: str) -> int:
        return sum(r == relation for r, _ in self.facts)

    @property
    def base_name(self) -> str:
        base = json.loads(self.base)
        return Path(str(base.get("name_or_path") or "?")).name if isinstance(base, dict) else "?"

    def to_json(self) -> dict:
        return {
            "base": json.loads(self.base),
            "prompt": self.prompt,
            "report_sha256": self.report_sha256,
            "report": self.report,
            "facts": sorted(f"{r}:{s}" for r, s in self.facts),
        }


def read_known(path: str | Path) -> KnownFacts:
    """The known facts of a familiarity report file; one-line errors for anything else."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"known facts: {p} is not a file: {_FIX}")
    raw = p.read_bytes()
    try:
        report = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"known facts: {p} is not JSON: {_FIX}") from None
    rows = report.get("facts") if isinstance(report, dict) else None
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and r.get("relation") in RELATIONS and isinstance(r.get("subject"), str) and "known" in r
        for r in rows
    ):
        raise ConfigError(
            f"known facts: {p} is not a familiarity report (no facts with relation, subject, known): {_FIX}"
        )
    facts = frozenset((r["relation"], r["subject"]) for r in rows if r["known"] is True)
    return KnownFacts(
        facts,
        json.dumps(report.get("base"), sort_keys=True),
        str(report.get("prompt", "?")),
        hashlib.sha256(raw).hexdigest(),
        str(p.resolve()),
    )


def parse_known(value: object) -> KnownFacts | None:
    """``None``; a report path (CLI, recipe, task metadata); or the record a manifest or
    ``splits.json`` holds (``KnownFacts.to_json``)."""
    if value is None or value == "" or isinstance(value, KnownFacts):
        return value or None
    if isinstance(value, str | Path):
        return read_known(value)
    if isinstance(value, dict) and isinstance(value.get("facts"), list):
        try:
            facts = frozenset(tuple(f.split(":", 1)) for f in value["facts"])
        except AttributeError:
            raise ConfigError("known facts: the recorded facts must be 'relation:subject' strings") from None
        if not all(len(f) == 2 and f[0] in RELATIONS for f in facts):
            raise ConfigError("known facts: the recorded facts must be 'relation:subject' strings")
        return KnownFacts(
            facts,  # type: ignore[arg-type]
            json.dumps(value.get("base"), sort_keys=True),
            str(value.get("prompt", "?")),
            str(value.get("report_sha256", "")),
            str(value.get("report", "")),
        )
    raise ConfigError(f"known facts: {value!r} is neither a familiarity report path nor a recorded set: {_FIX}")
