"""chain: which question each expert is asked, read from the task's own context."""

import pytest

from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.reuse.chain import plan, with_question

DS = build_dataset(make_spec("twohop", "F", 0, 4, 3, None))
DOC = DS.splits["test"][0]


def test_a_composed_question_becomes_the_members_questions_inside_the_same_context():
    few_shot = "Q: What is the capital of the country where Mira Volk was born?\nA: Gleump\n\n"
    chat = ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n")
    for context in (DOC["prompt"], few_shot + DOC["prompt"], chat[0] + DOC["prompt"] + chat[1]):
        p = plan("twohop", context)
        person, country = DOC["question"].split("where ")[1].split(" was born")[0], DOC["intermediate"]
        assert p.member is None and not p.cot
        assert p.first_context() == context.replace(DOC["question"], f"In which country was {person} born?")
        assert p.second_context(f" {country}") == context.replace(DOC["question"], f"What is the capital of {country}?")
        assert p.answer(f" {country}", " Zelandia") == " Zelandia"
        assert p.first_context().startswith(context[: context.rfind("Q: ")])  # examples, template kept


def test_a_cot_task_gets_the_worked_chain_and_the_first_step_without_the_cue():
    p = plan("twohop", DOC["cot_prompt"])
    assert p.cot and "step by step" not in p.first_context() and "step by step" not in p.second_context("B")
    assert p.answer(" Zelandia", " Gleump").endswith(
        "was born in Zelandia. The capital of Zelandia is Gleump. So the answer is Gleump."
    )


def test_probes_go_to_their_own_member_and_foreign_questions_are_refused():
    assert plan("twohop", DS.splits["probe_hop1"][0]["prompt"]).member == 0
    assert plan("twohop", DS.splits["probe_hop2"][0]["prompt"]).member == 1
    assert plan("twohop", DS.splits["probe_target"][0]["prompt"]).member is None  # composed: chained
    with pytest.raises(ConfigError, match="neither a composed twohop question nor a member's own"):
        plan("twohop", "Q: What is 2 + 2?\nA:", "arith")
    with pytest.raises(ConfigError, match="has no 'Q: …\\\\nA:' question"):
        with_question("Translate: cat", "x")
