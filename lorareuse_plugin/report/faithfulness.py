"""Correct × faithful: does a right chain-of-thought answer come with a chain that supports it?

Exact match cannot tell composition from a lucky or memorised answer. For every CoT row of the
ladder, each generated chain is judged *faithful* (every step follows from the question and the
steps before it, the answer is the chain's conclusion — ``rescore.rule``) by the rule and, when one
is built, by the light rescorer, and crossed with exact match:

- correct and faithful: composition;
- correct but unfaithful: a shortcut (the answer did not come from the chain);
- faithful but wrong: the chain is sound, a fact is missing or wrong;
- neither.

Claim C5 — "the 2-expert library's correct CoT answers are mostly faithful" — is decided per row by
the Wilson 95 % interval of the faithful share of its correct answers (judged by the rule): supported
when the interval lies above 1/2, not supported when it lies at or below 1/2, else inconclusive (also
when the row has no correct answer at all).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from lorareuse_plugin.stats.intervals import wilson

CELLS = ("composed", "shortcut", "sound_but_wrong", "neither")

# (questions, responses) -> faithful verdicts
Judge = Callable[[Sequence[str], Sequence[str]], list[bool]]


def rule_judge(questions: Sequence[str], responses: Sequence[str]) -> list[bool]:
    from lorareuse_plugin.rescore.rule import judge

    return judge(questions, responses)


def rescorer_judge(rescorer, score: str) -> Judge:
    """The rescorer's ``score`` (``nsp`` or ``head``) at threshold 1/2, cached per chain."""
    seen: dict[tuple[str, str], bool] = {}

    def judge(questions: Sequence[str], responses: Sequence[str]) -> list[bool]:
        new = list(dict.fromkeys(k for k in zip(questions, responses, strict=True) if k not in seen))
        if new:
            probs = rescorer.faithful([q for q, _ in new], [r for _, r in new], score)
            seen.update({k: p >= 0.5 for k, p in zip(new, probs, strict=True)})
        return [seen[k] for k in zip(questions, responses, strict=True)]

    return judge


def judges(rescorer: Path | None = None) -> tuple[dict[str, Judge], str]:
    """The rule, and the rescorer of ``rescorer`` (default: the default rescorer, when it is built)
    with its best score on the test worlds' held-out chains; and a caption saying how good it is."""
    from lorareuse_plugin.rescore.model import Rescorer, best_score, default_rescorer

    out: dict[str, Judge] = {"rule": rule_judge}
    path = rescorer or default_rescorer()
    if path is None:
        return out, "judged by the rule (no rescorer built: `lorareuse rescorer build`)"
    model = Rescorer.load(path)
    score = best_score(model.info)
    out["rescorer"] = rescorer_judge(model, score)
    acc = model.info.get("accuracy", {}).get("test worlds", {}).get(score, {})
    known = (
        f"{acc['accuracy']:.2f} [{acc['ci95'][0]:.2f}, {acc['ci95'][1]:.2f}], n={acc['n']}" if acc else "not measured"
    )
    rule = model.info.get("accuracy", {}).get("test worlds", {}).get("rule", {}).get("accuracy")
    vs = f"; the rule's: {rule:.2f}" if rule is not None else ""
    how = f"{score} score; its accuracy on perturbed test-world chains {known}{vs}"
    return out, f"judged by the rule and by the light rescorer ({how})"


def _cells(correct: Sequence[int], faithful: Sequence[bool]) -> dict[str, int]:
    out = dict.fromkeys(CELLS, 0)
    for c, f in zip(correct, faithful, strict=True):
        out[CELLS[(0 if f else 1) if c else (2 if f else 3)]] += 1
    return out


def faithfulness(rows: list[dict], judges: dict[str, Judge]) -> list[dict]:
    """One record per CoT test row whose samples hold the generated chains: the 2×2 per judge."""
    out = []
    for r in rows:
        items = r["items"]
        if r.get("form") != "cot" or r.get("split") != "test" or not any(items.responses):
            continue
        record = {k: r[k] for k in ("library", "family", "familiarity", "seed", "entry", "group", "method", "task")}
        record["n"] = items.n
        for name, judge in judges.items():
            record[name] = _cells(items.correct, judge(items.questions, items.responses))
        out.append(record)
    return out


def c5_claims(records: list[dict]) -> list[dict]:
    """C5 per 2-expert-library row, in the claims table's row format (``diff`` = the faithful share)."""
    from lorareuse_plugin.report.claims import CLAIMS, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

    out = []
    for rec in records:
        if rec["group"] != "library-2":
            continue
        cells = rec["rule"]
        correct = cells["composed"] + cells["shortcut"]
        share = cells["composed"] / correct if correct else float("nan")
        low, high = wilson(cells["composed"], correct) if correct else (0.0, 1.0)
        verdict = (
            INCONCLUSIVE if not correct else SUPPORTED if low > 0.5 else NOT_SUPPORTED if high <= 0.5 else INCONCLUSIVE
        )
        out.append(
            {
                "claim": "C5",
                "statement": CLAIMS["C5"],
                "family": rec["family"],
                "familiarity": rec["familiarity"],
                "library": rec["library"],
                "task": rec["task"],
                "form": "cot",
                "method": rec["method"],
                "verdict": verdict,
                "test": f"faithful share of {correct} correct answers > 1/2",
                "diff": share,
                "low": low,
                "high": high,
                "n_correct": correct,
            }
        )
    return out


def to_markdown(records: list[dict], caption: str = "judged by the rule") -> str:
    if not records:
        return ""
    judges = [k for k in records[0] if isinstance(records[0][k], dict)]
    head = " | ".join(f"{j}: composed | {j}: shortcut | {j}: sound, wrong | {j}: neither" for j in judges)
    lines = [
        "### Faithfulness of CoT answers (correct × faithful chain; counts of n)",
        "",
        "composed = correct and faithful; shortcut = correct, the chain does not support it; sound, wrong = a "
        f"faithful chain to a wrong answer (a fact missing); {caption}",
        "",
        f"| library | seed | entry | task | n | {head} |",
        "|---|---:|---|---|---:|" + "---:|" * (4 * len(judges)),
    ]
    for r in records:
        cells = " | ".join(str(r[j][c]) for j in judges for c in CELLS)
        task = r["task"].removeprefix("lorareuse_")
        lines.append(f"| {r['library']} | {r['seed']} | {r['entry']} | {task} | {r['n']} | {cells} |")
    return "\n".join(lines) + "\n"
