"""The rule checker: parses our chains and judges subject, bridge and conclusion."""

import pytest

from lorareuse_plugin.rescore.chains import background_chains, gold_test_chains, labelled
from lorareuse_plugin.rescore.rule import check, sentences

Q = "What is the capital of the country where Mira Volk was born?"
GOOD = "Mira Volk was born in Zelandia. The capital of Zelandia is Brask. So the answer is Brask."


@pytest.mark.parametrize(
    "response, reason",
    [
        (GOOD, ""),
        (GOOD + " Also Tarn.", ""),  # judged up to its conclusion, as the answer extractor reads it
        ("Ola Fenn was born in Zelandia. The capital of Zelandia is Brask. So the answer is Brask.", "subject swapped"),
        ("Mira Volk was born in Zelandia. The capital of Olvia is Brask. So the answer is Brask.", "bridge changed"),
        ("Mira Volk was born in Zelandia. The capital of Zelandia is Brask. So the answer is Tarn.", "conclusion"),
        ("Mira Volk was born in Zelandia.", "not a two-step chain"),
        ("Brask", "not a two-step chain"),
    ],
)
def test_twohop_chains_are_judged_step_by_step(response, reason):
    v = check("Q: " + Q + " Let's think step by step.\nA:", response)
    assert v.faithful == (reason == "") and reason in v.reason


def test_math_chains_check_numbers_and_arithmetic():
    q = "How many legs do 3 glorps have in total?"
    assert check(q, "A glorp has 5 legs. 3 * 5 = 15. So the answer is 15.").faithful
    assert check(q, "A glorp has 5 legs. 3 * 5 = 16. So the answer is 16.").reason == "arithmetic wrong"
    assert check(q, "A glorp has 5 legs. 4 * 5 = 20. So the answer is 20.").reason == "bridge changed"
    assert check(q, "A blimp has 5 legs. 3 * 5 = 15. So the answer is 15.").reason == "subject swapped"
    q2 = "Tom has 3 boxes with 4 pens in each box, and 5 more pens. How many pens does Tom have in total?"
    assert check(q2, "3 * 4 = 12. 12 + 5 = 17. So the answer is 17.").faithful
    assert check(q2, "3 * 4 = 12. 13 + 5 = 18. So the answer is 18.").reason == "bridge changed"
    assert check(q2, "3 * 4 = 12. 12 + 5 = 17. So the answer is 12.").reason == "answer is not the chain's conclusion"


def test_questions_that_are_not_ours_get_no_verdict():
    assert check("What is 2 + 2?", "4") is None
    assert sentences("A. B. So the answer is C. D.") == ["A.", "B.", "So the answer is C."]


def test_the_synthetic_labels_hold_for_the_rule_on_background_and_gold_test_chains():
    for chains in (labelled(background_chains("t", 40)), labelled(gold_test_chains(20))):
        assert {c.faithful for c in chains} == {True, False}
        assert {c.family for c in chains} == {"twohop", "math_ks", "math_ss"}
        assert [check(c.question, c.text).faithful for c in chains] == [c.faithful for c in chains]
