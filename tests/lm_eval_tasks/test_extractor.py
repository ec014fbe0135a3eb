"""The answer extractor is the one configured in the task YAML, applied by lm-eval's own filter."""

from pathlib import Path

import pytest

import lorareuse_plugin


def _template_filter_and_metric():
    import yaml
    from lm_eval.filters.extraction import RegexFilter

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    cfg = yaml.load((Path(lorareuse_plugin.TASKS_DIR) / "_gen_template_yaml").read_text(), Loader=_Loader)
    (step,) = [f for f in cfg["filter_list"][0]["filter"] if f["function"] == "regex"]
    metric = cfg["metric_list"][0]
    return RegexFilter(regex_pattern=step["regex_pattern"], group_select=step["group_select"]), metric


def _score(response: str, gold: str) -> float:
    from lm_eval.api.metrics import exact_match_hf_evaluate

    regex, metric = _template_filter_and_metric()
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
