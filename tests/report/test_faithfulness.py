"""Correct × faithful per CoT row, and claim C5 from it."""

from lorareuse_plugin.report.claims import to_markdown as claims_markdown
from lorareuse_plugin.report.faithfulness import c5_claims, faithfulness, rule_judge, to_markdown
from lorareuse_plugin.report.items import Items

Q = "What is the capital of the country where Mira Volk was born?"
FAITHFUL = "Mira Volk was born in Zelandia. The capital of Zelandia is Brask. So the answer is Brask."
SHORTCUT = "Mira Volk was born in Olvia. The capital of Zelandia is Brask. So the answer is Brask."


def _row(correct: list[int], responses: list[str], group: str = "library-2", form: str = "cot") -> dict:
    n = len(correct)
    items = Items(
        tuple(range(n)), tuple(correct), ("c",) * n, ("Brask",) * n, (0,) * n, (0,) * n, (None,) * n, (Q,) * n,
        tuple(responses),
    )  # fmt: skip
    return {
        "library": "lib", "family": "twohop", "familiarity": "F", "seed": 0, "entry": "delta_mean[hop1+hop2]",
        "group": group, "method": "delta_mean", "task": "lorareuse_twohop_f_cot", "split": "test", "form": form,
        "items": items,
    }  # fmt: skip


def test_the_two_by_two_counts_each_answer_once():
    row = _row([1, 1, 0, 0], [FAITHFUL, SHORTCUT, FAITHFUL, "Brask"])
    (rec,) = faithfulness([row, _row([1], [FAITHFUL], form="gen")], {"rule": rule_judge})
    assert rec["rule"] == {"composed": 1, "shortcut": 1, "sound_but_wrong": 1, "neither": 1} and rec["n"] == 4
    assert "| lib | 0 | delta_mean[hop1+hop2] | twohop_f_cot | 4 | 1 | 1 | 1 | 1 |" in to_markdown([rec])


def test_c5_is_decided_by_the_interval_of_the_faithful_share_of_correct_answers():
    judges = {"rule": rule_judge}
    mostly = faithfulness([_row([1] * 20, [FAITHFUL] * 20)], judges)
    rarely = faithfulness([_row([1] * 20, [SHORTCUT] * 20)], judges)
    half = faithfulness([_row([1] * 4, [FAITHFUL, SHORTCUT] * 2)], judges)
    none = faithfulness([_row([0] * 5, [FAITHFUL] * 5)], judges)
    other_group = faithfulness([_row([1] * 20, [FAITHFUL] * 20, group="upper")], judges)
    verdicts = [c["verdict"] for recs in (mostly, rarely, half, none) for c in c5_claims(recs)]
    assert verdicts == ["supported", "not supported", "inconclusive", "inconclusive"]
    assert c5_claims(other_group) == []
    assert "**C5**" in claims_markdown(c5_claims(mostly), 0.05)
    assert "| supported (1.00 [0.84, 1.00] of 20) |" in claims_markdown(c5_claims(mostly), 0.05)
    assert "| inconclusive (no correct answer) |" in claims_markdown(c5_claims(none), 0.05)
