"""Statistics of the report on hand-built results: verdicts, chance, paired comparisons, gaps."""

import pytest

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.report.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, check_claims
from lorareuse_plugin.report.comparisons import comparisons
from lorareuse_plugin.report.items import Items
from lorareuse_plugin.report.tables import aggregate, gaps, to_markdown

N = 100
GROUPS = {"expert": "expert", "library-2": "library-2", "library-3ac": "library-3ac", "upper": "upper"}


def _row(entry, group, experts, correct, *, familiarity="F", task="lorareuse_twohop_f_cot", form="cot", seed=0):
    items = Items(
        doc_ids=tuple(range(N)),
        correct=tuple(int(i in correct) for i in range(N)),
        clusters=tuple(f"country{i}" for i in range(N)),  # one bridge per test person
        answers=tuple(f"capital{i % 50}" for i in range(N)),  # the most frequent answer: 2 of 100
        in_prompt_choices=(0,) * N,
        n_choices=(4,) * N,
    )
    return {
        "library": f"twohop_{familiarity.lower()}",
        "family": "twohop",
        "familiarity": familiarity,
        "seed": seed,
        "entry": entry,
        "group": group,
        "method": entry.split("[")[0],
        "experts": experts,
        "task": task,
        "split": "test",
        "form": form,
        "metric": "exact_match",
        "value": len(correct) / N,
        "stderr": None,
        "n": N,
        "items": items,
    }


def _library(two: set[int], hop1=frozenset(range(30)), union=frozenset(range(90)), ac=None, **kw):
    rows = [
        _row("expert:hop1", "expert", "hop1", hop1, **kw),
        _row("expert:hop2", "expert", "hop2", set(range(5)), **kw),
        _row("delta_mean[hop1+hop2]", "library-2", "hop1+hop2", two, **kw),
        _row("expert:union", "upper", "union", union, **kw),
        _row("expert:oracle", "upper", "oracle", set(range(3)), **kw),
    ]
    if ac is not None:
        rows.append(_row("delta_mean[hop1+hop2+ac]", "library-3ac", "hop1+hop2+ac", ac, **kw))
    return rows


def _verdicts(rows, claim):
    cells = aggregate(rows)
    return [r["verdict"] for r in check_claims(rows, cells) if r["claim"] == claim]


@pytest.mark.parametrize(
    "two,verdict",
    [
        (set(range(10)), SUPPORTED),  # worse than hop1 alone on the same items
        (set(range(80)), NOT_SUPPORTED),  # clearly better than its best member
        (set(range(35)), INCONCLUSIVE),  # +0.05: the interval straddles the threshold
    ],
)
def test_c1_verdicts(two, verdict):
    assert _verdicts(_library(two), "C1") == [verdict]


def test_c2_c4_and_holm_p_values():
    rows = _library(set(range(10)), ac=set(range(70)))
    cells = aggregate(rows)
    claims = {r["claim"]: r for r in check_claims(rows, cells)}
    assert claims["C2"]["verdict"] == SUPPORTED and claims["C2"]["diff"] == pytest.approx(0.6)
    assert claims["C4"]["verdict"] == SUPPORTED and claims["C4"]["b_only"] == 0 and claims["C4"]["a_only"] == 80
    assert all(claims[c]["p_holm"] >= claims[c]["mcnemar_p"] for c in ("C1", "C2", "C4"))


def test_c3_needs_all_three_familiarities_and_orders_them():
    rows = []
    for fam, k in (("F", 5), ("H", 30), ("R", 60)):
        rows += _library(set(range(k)), familiarity=fam, task=f"lorareuse_twohop_{fam.lower()}_cot")
    assert _verdicts(rows, "C3") == [SUPPORTED]
    for order, verdict in (((20, 20, 20), INCONCLUSIVE), ((60, 30, 5), NOT_SUPPORTED)):
        rows = []
        for fam, k in zip("FHR", order, strict=True):
            rows += _library(set(range(k)), familiarity=fam, task=f"lorareuse_twohop_{fam.lower()}_cot")
        assert _verdicts(rows, "C3") == [verdict]  # 100 items each cannot show 0.2 = 0.2; a reversal they can
    assert _verdicts(_library(set(range(20))), "C3") == []


def test_bad_threshold_is_refused():
    rows = _library(set(range(10)))
    with pytest.raises(ConfigError, match=r"outside \[0, 1\]"):
        check_claims(rows, aggregate(rows), threshold=1.5)


def test_table_shows_n_interval_chance_and_marks_cells_at_chance():
    rows = _library(set(range(10)), hop1=frozenset({0, 1}))
    cells = {c["entry"]: c for c in aggregate(rows)}
    assert cells["expert:hop1"]["chance"] == pytest.approx(0.02)
    assert cells["expert:hop1"]["at_or_below_chance"] and not cells["expert:union"]["at_or_below_chance"]
    assert cells["delta_mean[hop1+hop2]"]["interval"] == "wilson" and cells["delta_mean[hop1+hop2]"]["n"] == N
    md = to_markdown(list(cells.values()), gaps(list(cells.values())))
    assert "twohop_f_cot (n=100)" in md and "| *answer-prior (chance)* | *0.02* |" in md
    assert "| expert:hop1 | 0.02 [0.01, 0.07]▽ |" in md
    assert "| delta_mean[hop1+hop2] | floor | -0.80 |" in md  # says why it is undefined instead of exploding


def test_paired_comparisons_against_best_member_and_union():
    rows = _library(set(range(10)))
    out = comparisons(rows, aggregate(rows))
    assert {(r["entry"], r["other"]) for r in out} == {
        ("delta_mean[hop1+hop2]", "expert:hop1"),
        ("delta_mean[hop1+hop2]", "expert:union"),
    }
    union = next(r for r in out if r["other"] == "expert:union")
    assert union["diff"] == pytest.approx(-0.8) and union["a_only"] == 0 and union["b_only"] == 80
    assert union["p_holm"] <= 1.0 and union["mcnemar_p"] < 1e-20


def test_seeds_pool_items_and_join_the_t_interval():
    rows = _library(set(range(10)), seed=0) + _library(set(range(30)), seed=1)
    cell = next(c for c in aggregate(rows) if c["entry"] == "delta_mean[hop1+hop2]")
    assert cell["n"] == 2 * N and cell["seeds"] == 2 and cell["mean"] == pytest.approx(0.2)
    assert cell["interval"].startswith("t over 2 seeds joined with pooled items")
    assert cell["low"] == 0.0  # the t-interval over two seeds is wide


def test_composition_gap_where_the_denominator_allows_it():
    rows = _library(set(range(50)))
    rows = [
        r if r["entry"] != "expert:oracle" else _row("expert:oracle", "upper", "oracle", set(range(80))) for r in rows
    ]
    (gap,) = gaps(aggregate(rows))
    assert gap["gap"] == pytest.approx((0.5 - 0.3) / (0.8 - 0.3)) and gap["minus_union"] == pytest.approx(0.5 - 0.9)
    rows = [
        r if r["entry"] != "expert:oracle" else _row("expert:oracle", "upper", "oracle", set(range(35))) for r in rows
    ]
    (gap,) = gaps(aggregate(rows))
    assert gap["gap"] is None and gap["why"] == "ceiling"
