"""The answer extractor is the one configured in the task YAML, applied by lm-eval's own filter."""

from pathlib import Path

import pytest

import lorareuse_plugin


def _template(name: str = "_gen_template_yaml") -> dict:
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    return yaml.load((Path(lorareuse_plugin.TASKS_DIR) / name).read_text(), Loader=_Loader)


def _template_filter_and_metric(name: str = "_gen_template_yaml", filt: str = "extract"):
    from lm_eval.filters.extraction import RegexFilter

    cfg = _template(name)
    (chosen,) = [f for f in cfg["filter_list"] if f["name"] == filt]
    (step,) = [f for f in chosen["filter"] if f["function"] == "regex"]
    metric = cfg["metric_list"][0]
    return RegexFilter(regex_pattern=step["regex_pattern"], group_select=step["group_select"]), metric


def _score(response: str, gold: str, template: str = "_gen_template_yaml", filt: str = "extract") -> float:
    from lm_eval.api.metrics import exact_match_hf_evaluate

    regex, metric = _template_filter_and_metric(template, filt)
    (extracted,) = list(regex.apply([[response]], [{}]))[0]
    kwargs = {k: v for k, v in metric.items() if k in ("ignore_case", "ignore_punctuation")}
    return exact_match_hf_evaluate(predictions=[extracted], references=[gold], **kwargs)["exact_match"]


@pytest.mark.parametrize(
    "response,gold",
    [
        (" Velmora", "Velmora"),
        ("Velmora.", "Velmora"),
        (" velmora", "Velmora"),
        (" Addis Ababa", "Addis Ababa"),
        (
            " Zorvan Pellik was born in Drasmia. The capital of Drasmia is Velmora. So the answer is Velmora.",
            "Velmora",
        ),
        ("A glorp has 5 legs. 3 * 5 = 15.\nSo the answer is: 15", "15"),
        ("3 * 4 = 12. 12 + 5 = 17. The answer is **17**.", "17"),
        (" 42", "42"),
    ],
)
def test_extractor_accepts_direct_and_cot_answers(response, gold):
    assert _score(response, gold) == 1.0


@pytest.mark.parametrize(
    "response,gold",
    [
        (" Drasmia", "Velmora"),
        ("", "Velmora"),
        # mentions the right city but concludes with another one
        ("The capital of Drasmia is Velmora. So the answer is Pimar.", "Velmora"),
        # reasons but never concludes: the first sentence is not the answer
        ("Zorvan Pellik was born in Drasmia. The capital of Drasmia is Velmora.", "Velmora"),
        ("3 * 5 = 15. So the answer is 16.", "15"),
        (" 150", "15"),
        (" Velmora City", "Velmora"),
    ],
)
def test_extractor_rejects_wrong_answers(response, gold):
    assert _score(response, gold) == 0.0


def test_python_scorer_matches_the_yaml_extractor():
    from lorareuse_plugin.data.formats import ANSWER_REGEX, is_correct

    regex, _ = _template_filter_and_metric()
    assert regex.regex_pattern == ANSWER_REGEX
    for response, gold, expected in [
        (" Velmora", "Velmora", True),
        ("So the answer is 16.", "15", False),
        ("A. So the answer is: 15", "15", True),
        ("", "x", False),
    ]:
        assert is_correct(response, gold) is expected
        assert _score(response, gold) == float(expected)


def test_every_generation_template_uses_the_same_extractors():
    from lorareuse_plugin.data.formats import ANSWER_REGEX, FLEXIBLE_REGEX

    for name in ("_gen_template_yaml", "_cot_template_yaml", "_ctx_template_yaml"):
        assert _template_filter_and_metric(name)[0].regex_pattern == ANSWER_REGEX, name
        assert _template_filter_and_metric(name, "flexible")[0].regex_pattern == FLEXIBLE_REGEX, name
        assert [f["name"] for f in _template(name)["filter_list"]] == ["extract", "flexible"]  # strict first


@pytest.mark.parametrize(
    "response,gold",
    [
        ("The capital of Czechia is Prague.", "Prague"),
        (" Prague", "Prague"),
        ("Mira Volk was born in Zelandia.", "Zelandia"),
        ("The capital of Poland is Warsaw, a city on the Vistula.", "Warsaw"),
        ("Zorvan was born in Drasmia.\nThe capital of Drasmia is Velmora.\nSo the answer is Velmora.", "Velmora"),
    ],
)
def test_flexible_filter_accepts_an_answer_said_in_a_sentence(response, gold):
    assert _score(response, gold, filt="flexible") == 1.0
    if response.startswith("The"):
        assert _score(response, gold) == 0.0  # the strict filter does not: that is why both are reported


@pytest.mark.parametrize(
    "response,gold",
    [
        ("The capital of Czechia is not Prague, it is Brno.", "Prague"),  # named only as a distractor
        ("Prague is a city; the capital of Czechia is Brno.", "Prague"),
        ("Czechia is a country in Europe.", "Prague"),
        ("The capital of Drasmia is Velmora. So the answer is Pimar.", "Velmora"),
    ],
)
def test_flexible_filter_rejects_a_gold_named_only_as_a_distractor(response, gold):
    assert _score(response, gold, filt="flexible") == 0.0


def test_cot_task_scores_a_multi_line_chain():
    """A real model writes its steps on several lines: generation must not stop at the first newline,
    and the extractor must find the conclusion on a later line, in any case."""
    cfg = _template("_cot_template_yaml")
    assert "\n" not in cfg["generation_kwargs"]["until"]
    chain = "Zorvan Pellik was born in Drasmia.\nThe capital of Drasmia is Velmora.\nSo The Answer Is Velmora."
    assert all(stop not in chain for stop in cfg["generation_kwargs"]["until"])  # generated whole
    assert _score(chain, "Velmora", "_cot_template_yaml") == 1.0
    # judged by its first conclusion, not by a later one
    assert _score(chain + "\nOr the answer is Pimar.", "Velmora", "_cot_template_yaml") == 1.0
    assert _score("So the answer is Pimar.\nThe answer is Velmora.", "Velmora", "_cot_template_yaml") == 0.0


def test_cot_budget_fits_the_longest_gold_chain_with_margin():
    from transformers import AutoTokenizer

    from lorareuse_plugin.base.build import SHIPPED
    from lorareuse_plugin.data.build import build_dataset, make_spec
    from lorareuse_plugin.data.families import FAMILIES

    tok = AutoTokenizer.from_pretrained(SHIPPED / "default")
    longest = 0
    for family in FAMILIES.values():
        for fam in [f.value for f in family.familiarities] or [None]:
            ds = build_dataset(make_spec(family.name, fam))
            for split in family.eval_splits:
                longest = max([longest] + [len(tok(" " + d["cot"]).input_ids) for d in ds.splits[split] if d["cot"]])
    assert longest > 10 and _template("_cot_template_yaml")["generation_kwargs"]["max_gen_toks"] >= 2 * longest
