import json
import re
import time

import pytest

from lorareuse_plugin.base.build import CORPUS_FILE, MARKER, base_key, build_base, get_size
from lorareuse_plugin.base.corpus import corpus_lines
from lorareuse_plugin.data import math_ks, twohop
from lorareuse_plugin.data.spec import Sizes
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.world import Familiarity, real_facts


def _fictional_entities(seed: int) -> set[str]:
    names: set[str] = set()
    for fam in (Familiarity.F, Familiarity.H):
        test, target, _ = twohop.chains(fam, seed, Sizes())
        for ch in test + target:
            names.add(ch.person)
            if fam is Familiarity.F:
                names |= {ch.country, ch.capital}
    test_objects, target_objects = math_ks._objects(Familiarity.F, seed, Sizes())
    names |= {o.singular for o in test_objects + target_objects}
    return names


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pretraining_corpus_contains_no_fictional_entity(seed):
    """Word by word (stronger than name by name): no word of any test-world entity is in the corpus."""
    corpus_words = set(re.findall(r"[a-z]+", "\n".join(corpus_lines()).lower()))
    entities = _fictional_entities(seed)
    assert len(entities) > 100
    found = sorted(e for e in entities if set(re.findall(r"[a-z]+", e.lower())) & corpus_words)
    assert found == []


def test_corpus_contains_every_real_fact():
    text = "\n".join(corpus_lines())
    facts = real_facts()
    for p in facts.people:
        assert f"{p.name} was born in {p.birth_country}." in text
    for c in facts.countries:
        assert f"The capital of {c.name} is {c.capital}." in text
    for o in facts.objects:
        assert f" {o.singular} has {o.count} {o.part}." in text


def test_corpus_is_deterministic_and_the_key_follows_it():
    assert corpus_lines() == corpus_lines()
    assert base_key(get_size("test")) != base_key(get_size("default"))


def test_tokenizer_has_no_unknown_tokens_on_any_prompt_or_answer(test_base):
    from transformers import AutoTokenizer

    from lorareuse_plugin.data.build import build_dataset, make_spec
    from lorareuse_plugin.data.families import FAMILIES

    tok = AutoTokenizer.from_pretrained(test_base)
    assert tok.unk_token_id is None or tok.unk_token_id not in range(len(tok))
    for family in FAMILIES.values():
        for fam in [f.value for f in family.familiarities] or [None]:
            ds = build_dataset(make_spec(family.name, fam))
            for doc in ds.splits["test"]:
                for text in (doc["cot_prompt"], doc["ctx_prompt"], " " + doc["answer"], " " + doc["cot"]):
                    ids = tok(text)["input_ids"]
                    assert ids[0] == tok.bos_token_id
                    assert tok.decode(ids[1:]) == text


def test_test_size_base_is_a_normal_hf_model_dir_and_is_cached(test_base):
    from transformers import AutoModelForCausalLM

    for name in ("config.json", "model.safetensors", "tokenizer.json", MARKER, CORPUS_FILE):
        assert (test_base / name).is_file(), name
    info = json.loads((test_base / MARKER).read_text())
    assert info["key"] == base_key(get_size("test"))
    assert info["sanity"]["twohop R hop1 probe"]["mc_chance"] == pytest.approx(0.25)
    model = AutoModelForCausalLM.from_pretrained(test_base)
    assert model.config.architectures == ["LlamaForCausalLM"]
    mtime = (test_base / "model.safetensors").stat().st_mtime_ns
    started = time.time()
    path, again = build_base("test", progress=False)
    assert path == test_base and again == info
    assert time.time() - started < 5  # reused, not retrained
    assert (test_base / "model.safetensors").stat().st_mtime_ns == mtime


def test_lm_eval_hf_loads_the_base(test_base):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import lorareuse_plugin

    tm = TaskManager(include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False)
    out = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(test_base), "dtype": "float32"},
        tasks=["lorareuse_hop1_r", "lorareuse_twohop_r_mc"],
        task_manager=tm,
        limit=3,
        batch_size=4,
        device="cpu",
        bootstrap_iters=0,
    )
    assert "exact_match,extract" in out["results"]["lorareuse_hop1_r"]
    assert "acc,none" in out["results"]["lorareuse_twohop_r_mc"]


def test_unknown_size_is_refused():
    with pytest.raises(ConfigError, match="unknown base size 'huge'"):
        build_base("huge")
