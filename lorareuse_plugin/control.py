"""A positive control: what must work before a failing reuse method can be called a failure.

A benchmark whose upper bounds fail cannot say that a reuse method failed, so every build and the
demo report its controls first: each with n, a Wilson interval, the score of a right-type guess
and its goal. A *gate* stops the build when missed; the others are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.stats import Proportion


class ControlFailed(ConfigError):
    """A gated positive control missed its goal (the numbers are in the message and the table)."""


@dataclass(frozen=True)
class Control:
    name: str  # e.g. "in-context (twohop F, gen)"
    subject: str  # what was measured, e.g. "base", "hop1 -> hop2 experts"
    result: Proportion
    goal: float
    gate: bool
    guess: float  # what a right-type guess scores

    @property
    def passed(self) -> bool:
        return self.result.n > 0 and self.result.value >= self.goal

    @property
    def verdict(self) -> str:
        if self.passed:
            return "pass"
        return "FAIL (gate)" if self.gate else "missed (reported)"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "subject": self.subject,
            **self.result.to_json(),
            "goal": self.goal,
            "gate": self.gate,
            "guess": round(self.guess, 4),
            "passed": self.passed,
        }

    @classmethod
    def from_json(cls, d: dict) -> Control:
        return cls(d["name"], d["subject"], Proportion(d["k"], d["n"]), d["goal"], d["gate"], d["guess"])


def load_controls(raw: list[dict]) -> list[Control]:
    """Controls as recorded (a base's ``lorareuse_base.json``, a library's manifest)."""
    return [Control.from_json(c) for c in raw]


def format_controls(controls: list[Control], title: str = "positive controls") -> str:
    """A Markdown table: control, subject, n, score [95% Wilson], right-type guess, goal, verdict."""
    rows = [
        f"### {title}",
        "",
        "| control | measured on | n | score [95% CI] | right-type guess | goal | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for c in controls:
        lo, hi = c.result.interval
        rows.append(
            f"| {c.name} | {c.subject} | {c.result.n} | {c.result.value:.2f} [{lo:.2f}, {hi:.2f}] | "
            f"{c.guess:.2f} | ≥ {c.goal:.2f}{' (gate)' if c.gate else ''} | {c.verdict} |"
        )
    return "\n".join(rows)


def enforce(controls: list[Control], what: str, *, allow_failed: bool = False) -> list[str]:
    """Raise ``ControlFailed`` naming every missed gate, unless ``allow_failed`` (opt-in, and the
    caller logs the returned warnings)."""
    missed = [c for c in controls if c.gate and not c.passed]
    messages = [f"{what}: positive control '{c.name}' missed its gate: {c.result} < {c.goal:.2f}" for c in missed]
    if missed and not allow_failed:
        raise ControlFailed(
            messages[0]
            + (f" (and {len(missed) - 1} more)" if len(missed) > 1 else "")
            + "; a benchmark whose controls fail cannot call a reuse method a failure — grow or retrain the"
            " base, or pass --allow-failed-controls to keep it anyway"
        )
    return messages
