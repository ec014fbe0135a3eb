"""The explicit decomposition reads only the prompt and rebuilds each member's own question."""

import pytest

from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.data.decompose import decompose, question_of
from lorareuse_plugin.errors import ConfigError


@pytest.mark.parametrize(
    "family,fam", [("twohop", "F"), ("twohop", "H"), ("twohop", "R"), ("math_ks", "F"), ("math_ks", "R")]
)
def test_every_composed_prompt_decomposes_into_the_members_probe_questions(family, fam):
    ds = build_dataset(make_spec(family, fam))
    members = ds.family.members
    probes = [{d["question"] for d in ds.splits[f"probe_{m}"]} for m in members]
    for doc in ds.splits["test"]:
        for key in ("prompt", "cot_prompt", "ctx_prompt"):
            assert question_of(doc[key]) == doc["question"]
            steps = decompose(family, doc[key])
            assert steps.members == members
            first = steps.first
            second = steps.second(doc["intermediate"])
            if family == "twohop":
                assert first in probes[0] and second in probes[1]
            else:  # math: the knowledge question, then a skill problem with the count given
                assert first.startswith("How many ") and " does one " in first
                assert f"has {doc['intermediate']} " in second
            assert steps.chain(doc["intermediate"], doc["answer"]) == doc["cot"]


def test_a_question_that_is_not_composed_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="is not a composed twohop question"):
        decompose("twohop", "Q: What is the capital of France?\nA:")
    with pytest.raises(ConfigError, match="has no explicit decomposition"):
        decompose("math_ss", "Q: x\nA:")
