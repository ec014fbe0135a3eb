"""The paper's claims as checks: one verdict per claim, familiarity, task and reuse method.

Each claim is a statement about a difference ``d`` and a threshold ``t`` (the smallest difference
that counts, default 0.05), decided by d's 95% interval [low, high]:

- "d > t" (C2, C3, C4): supported when low > t, not supported when high ≤ t, else inconclusive;
- "d ≤ t" (C1):         supported when high ≤ t, not supported when low > t, else inconclusive.

"Inconclusive" = the interval straddles the threshold: more items (or seeds) are needed.
C1, C2, C4 are paired (same items); C3 compares different test sets (F, H, R), unpaired.
"""

from __future__ import annotations

import re

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.report.comparisons import index_rows, paired
from lorareuse_plugin.report.tables import best_member, cell_means, pooled
from lorareuse_plugin.stats import holm, unpaired_difference
from lorareuse_plugin.stats.intervals import DEFAULT_RESAMPLES
from lorareuse_plugin.stats.paired import Difference

DEFAULT_THRESHOLD = 0.05
CLAIM_FORMS = ("gen", "cot")
FAMILIARITY_ORDER = ("F", "H", "R")
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
CLAIMS = {
    "C1": "the 2-expert library is not better than its best single member (paired)",
    "C2": "adding the expert trained on the target task (ac) helps: 3-expert library > 2-expert library (paired)",
    "C3": "familiarity matters: the 2-expert library scores R > F, and neither F→H nor H→R reverses (unpaired)",
    "C4": "joint training composes where reuse does not: union expert > 2-expert library (paired)",
    "C5": "the 2-expert library's correct CoT answers are mostly faithful (faithful share > 1/2, judged by the rule)",
}


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--claims-threshold {threshold} is outside [0, 1]: pass a difference such as 0.05")
    return threshold


def decide(d: Difference, threshold: float, above: bool) -> str:
    """The verdict for "d > threshold" (``above``) or "d ≤ threshold"."""
    if above:
        return SUPPORTED if d.low > threshold else NOT_SUPPORTED if d.high <= threshold else INCONCLUSIVE
    return SUPPORTED if d.high <= threshold else NOT_SUPPORTED if d.low > threshold else INCONCLUSIVE


def _method(entry: str) -> str:
    return entry.split("[", 1)[0]


def _row(claim: str, cell: dict, method: str, d: Difference, verdict: str, test: str) -> dict:
    return {
        "claim": claim,
        "statement": CLAIMS[claim],
        "family": cell["family"],
        "familiarity": cell["familiarity"],
        "library": cell["library"],
        "task": cell["task"],
        "form": cell["form"],
        "method": method,
        "verdict": verdict,
        "test": test,
        **d.to_json(),
    }


def check_claims(
    rows: list[dict],
    cells: list[dict],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[dict]:
    threshold = check_threshold(threshold)
    by = index_rows(rows)
    mean = cell_means(cells)
    kw = {"resamples": resamples, "seed": seed}
    out: list[dict] = []
    two = [c for c in cells if c["group"] == "library-2" and c.get("split") == "test" and c["form"] in CLAIM_FORMS]
    for c in two:
        lib, task, m = c["library"], c["task"], _method(c["entry"])
        if (best := best_member(mean, lib, task, c["experts"])) is not None:
            d = paired(by, lib, task, c["entry"], best, **kw)
            out.append(_row("C1", c, m, d, decide(d, threshold, False), f"{c['entry']} − {best} ≤ {threshold}"))
        three = next(
            (e for (lb, e, t) in mean if lb == lib and t == task and e.startswith(f"{m}[") and e.endswith("+ac]")),
            None,
        )
        if three:
            d = paired(by, lib, task, three, c["entry"], **kw)
            out.append(_row("C2", c, m, d, decide(d, threshold, True), f"{three} − {c['entry']} > {threshold}"))
        if (lib, "expert:union", task) in mean:
            d = paired(by, lib, task, "expert:union", c["entry"], **kw)
            out.append(_row("C4", c, m, d, decide(d, threshold, True), f"expert:union − {c['entry']} > {threshold}"))
    out += _familiarity_claims(by, two, threshold, kw)
    paired_rows = [r for r in out if r.get("mcnemar_p") is not None]
    for r, p in zip(paired_rows, holm([r["mcnemar_p"] for r in paired_rows]), strict=True):
        r["p_holm"] = p
    return out


def _familiarity_claims(by: dict, two: list[dict], threshold: float, kw: dict) -> list[dict]:
    """C3 per (family, form, method) when an F, an H and an R library are all in the run."""
    groups: dict[tuple, dict[str, dict]] = {}
    for c in two:
        key = (c["family"], c["form"], re.sub(r"_[fhr](?=_|$)", "", c["task"]), c["entry"])
        groups.setdefault(key, {})[c["familiarity"]] = c
    out = []
    for (_family, _form, _task, entry), fam in groups.items():
        if not set(FAMILIARITY_ORDER) <= set(fam):
            continue
        items = {}
        for f in FAMILIARITY_ORDER:
            c = fam[f]
            o, cl, _ = pooled(by[(c["library"], entry, c["task"])])
            items[f] = (o, cl)
        rf, hf, rh = (
            unpaired_difference(items[hi][0], items[lo][0], items[hi][1], items[lo][1], **kw)
            for hi, lo in (("R", "F"), ("H", "F"), ("R", "H"))
        )
        reversed_ = hf.high < -threshold or rh.high < -threshold
        if rf.high <= threshold or reversed_:
            verdict = NOT_SUPPORTED
        elif rf.low > threshold:
            verdict = SUPPORTED
        else:
            verdict = INCONCLUSIVE
        test = (
            f"R−F {rf.value:+.2f} [{rf.low:+.2f}, {rf.high:+.2f}] > {threshold}; "
            f"H−F {hf.value:+.2f} [{hf.low:+.2f}, {hf.high:+.2f}], R−H {rh.value:+.2f} [{rh.low:+.2f}, {rh.high:+.2f}] "
            f"not below −{threshold}"
        )
        row = _row(
            "C3",
            {**fam["F"], "familiarity": "F<H<R", "library": "+".join(fam[f]["library"] for f in "FHR")},
            _method(entry),
            rf,
            verdict,
            test,
        )
        out.append(row)
    return out


def _verdict_cell(r: dict | None) -> str:
    if r is None:
        return ""
    if r["claim"] == "C5":  # a share of the correct answers, not a difference
        if not r["n_correct"]:
            return f"{r['verdict']} (no correct answer)"
        return f"{r['verdict']} ({r['diff']:.2f} [{r['low']:.2f}, {r['high']:.2f}] of {r['n_correct']})"
    return f"{r['verdict']} ({r['diff']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}])"


def to_markdown(claims: list[dict], threshold: float) -> str:
    if not claims:
        return "No claim could be checked: the run has no 2-expert library on a composed gen/CoT task.\n"
    lines = [f"Claims (threshold t = {threshold}; verdict from the 95% interval of the difference):", ""]
    for claim, statement in CLAIMS.items():
        mine = [r for r in claims if r["claim"] == claim]
        if not mine:
            continue
        methods = list(dict.fromkeys(r["method"] for r in mine))
        lines += [f"**{claim}** — {statement}", ""]
        lines.append("| familiarity | task | " + " | ".join(methods) + " |")
        lines.append("|---|---|" + "---|" * len(methods))
        for fam, task in dict.fromkeys((r["familiarity"], r["task"]) for r in mine):
            cells = []
            for m in methods:
                r = next((r for r in mine if r["familiarity"] == fam and r["task"] == task and r["method"] == m), None)
                cells.append(_verdict_cell(r))
            lines.append(f"| {fam} | {task.removeprefix('lorareuse_')} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
