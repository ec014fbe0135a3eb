import json
import os
import subprocess
import sys

import pytest

from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.data.families import FAMILIES
from lorareuse_plugin.errors import ConfigError

ALL = [(f.name, fam.value) for f in FAMILIES.values() for fam in f.familiarities] + [("math_ss", None)]

_HASH_SCRIPT = """
import json
from lorareuse_plugin.data.build import build_dataset, make_spec
out = {}
for family, fam in %r:
    out[f"{family}/{fam}"] = build_dataset(make_spec(family, fam, seed=%d)).hashes
print(json.dumps(out, sort_keys=True))
"""


def _hashes_in_subprocess(seed: int, hashseed: str) -> dict:
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    out = subprocess.run(
        [sys.executable, "-c", _HASH_SCRIPT % (ALL, seed)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def test_same_seed_gives_identical_hashes_across_processes_and_hash_seeds():
    a = _hashes_in_subprocess(0, "1")
    b = _hashes_in_subprocess(0, "12345")
    assert a == b
    here = {f"{fam}/{x}": build_dataset(make_spec(fam, x, seed=0)).hashes for fam, x in ALL}
    assert json.loads(json.dumps(here, sort_keys=True)) == a


@pytest.mark.parametrize("family,fam", ALL)
def test_different_seed_gives_different_data(family, fam):
    h0 = build_dataset(make_spec(family, fam, seed=0)).hashes
    h1 = build_dataset(make_spec(family, fam, seed=1)).hashes
    for split in h0:
        assert h0[split] != h1[split], split


@pytest.mark.parametrize("family,fam", ALL)
def test_split_structure(family, fam):
    ds = build_dataset(make_spec(family, fam, n_test=12, n_target=9, n_skill=20))
    fam_obj = FAMILIES[family]
    assert len(ds.splits["test"]) == 12
    assert len(ds.splits["probe_target"]) == 9
    m1, m2 = fam_obj.members
    assert ds.splits["union"] == ds.splits[m1] + ds.splits[m2]
    assert ds.splits["oracle"] == ds.splits["union"] + ds.splits["target"]
    for name in fam_obj.eval_splits:
        for doc in ds.splits[name]:
            assert doc["prompt"] == f"Q: {doc['question']}\nA:"
            assert doc["choices"][doc["label"]] == doc["answer"]
            assert len(doc["choices"]) == len(set(doc["choices"])) >= 2
    for name in fam_obj.train_splits:
        kinds = {r["kind"] for r in ds.splits[name]}
        assert kinds <= {"statement", "qa", "cot"}
        for r in ds.splits[name]:
            assert r["text"] == r["prompt"] + r["completion"]
    for doc in ds.splits["test"]:  # CoT states the intermediate first and ends with the answer
        assert doc["cot"].endswith(f"So the answer is {doc['answer']}.")
        assert doc["intermediate"] in doc["cot"]
        assert doc["cot"].index(doc["intermediate"]) < doc["cot"].rindex(doc["answer"])


def test_twohop_familiarity_semantics():
    from lorareuse_plugin.world import real_facts

    facts = real_facts()
    real_people = {p.name for p in facts.people}
    real_countries = set(facts.capital_of)
    f = build_dataset(make_spec("twohop", "F")).splits["test"]
    h = build_dataset(make_spec("twohop", "H")).splits["test"]
    r = build_dataset(make_spec("twohop", "R")).splits["test"]
    assert not {d["intermediate"] for d in f} & real_countries
    assert {d["intermediate"] for d in h} <= real_countries
    for d in h:
        assert d["answer"] == facts.capital_of[d["intermediate"]]
        assert not any(p in d["question"] for p in real_people)
    for d in r:
        assert any(p in d["question"] for p in real_people)
        assert d["answer"] == facts.capital_of[d["intermediate"]]


def test_target_expert_entities_are_disjoint_from_test_entities():
    ds = build_dataset(make_spec("twohop", "F"))
    test_people = {d["question"] for d in ds.splits["test"]}
    target_questions = {d["question"] for d in ds.splits["probe_target"]}
    assert not test_people & target_questions
    test_bridges = {d["intermediate"] for d in ds.splits["test"]}
    assert not test_bridges & {d["intermediate"] for d in ds.splits["probe_target"]}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"family": "twohop", "familiarity": "X"}, "unknown familiarity 'X'"),
        ({"family": "threehop", "familiarity": "F"}, "unknown family 'threehop'"),
        ({"family": "twohop", "familiarity": "F", "n_test": -3}, "n_test=-3 is invalid"),
        ({"family": "twohop", "familiarity": "F", "n_test": "ten"}, "n_test='ten' is not an integer"),
        ({"family": "twohop", "familiarity": "F", "seed": -1}, "seed=-1 is invalid"),
        ({"family": "twohop"}, "needs a familiarity"),
        ({"family": "math_ks", "familiarity": "H"}, "not defined for this family"),
        ({"family": "math_ss", "familiarity": "F"}, "has no familiarity axis"),
        ({"family": "twohop", "familiarity": "R", "n_test": 200, "n_target": 100}, "real people"),
    ],
)
def test_bad_specs_raise_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        build_dataset(make_spec(**kwargs))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "family,fam,n_test", [("twohop", "F", 100), ("twohop", "H", 100), ("twohop", "R", 100), ("math_ks", "F", 100)]
)
def test_test_sets_measure_a_right_type_guess_scores_at_most_5_percent(family, fam, n_test):
    from collections import Counter

    test = build_dataset(make_spec(family, fam)).splits["test"]
    assert len(test) >= n_test
    counts = Counter(d["answer"] for d in test)
    assert counts.most_common(1)[0][1] / len(test) <= 0.05, counts.most_common(3)
    assert len(counts) >= 20
    if (family, fam) == ("twohop", "F"):
        assert len(counts) == len(test)  # one bridge per test person
    for d in test:  # the in-context forms state the facts, and a distractor's answer is a choice
        assert d["ctx_prompt"].endswith(d["prompt"]) and d["ctx_prompt"] != d["prompt"]
        if family == "twohop":
            assert sum(c in d["ctx_prompt"] for c in d["choices"]) >= 2


def test_full_size_recipes_have_300_composed_questions_where_the_tables_allow():
    from lorareuse_plugin.library.recipe import load_recipe

    for name, least in [("twohop_f", 300), ("twohop_h", 300), ("twohop_r", 200), ("math_ks_f", 300)]:
        recipe = load_recipe(f"adapters/{name}.yaml")
        assert recipe.data.sizes.n_test >= least
        assert len(build_dataset(recipe.data).splits["test"]) >= least
