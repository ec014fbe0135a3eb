"""What guessing scores on a task: the floor every cell must be read against.

Multiple choice: the mean of 1/#choices. Generation: the best of two right-type guessing
strategies computed from the test items themselves — always answering the most frequent gold
answer (the answer prior), or copying one of the right-type answers the prompt states (an
in-context prompt states the distractor chain's answer too: reading without combining).
"""

from __future__ import annotations

from collections import Counter

from lorareuse_plugin.report.items import Items

MC_FORMS = ("mc", "ctx_mc")


def chance_level(items: Items, form: str) -> tuple[float, str]:
    """(chance accuracy, how it was computed) for a task's items."""
    if items.n == 0:
        return float("nan"), "no items"
    if form in MC_FORMS:
        return sum(1 / k for k in items.n_choices if k) / items.n, "1/#choices"
    prior = Counter(items.answers).most_common(1)[0][1] / items.n
    copied = [1 / k for k in items.in_prompt_choices if k]
    copy = sum(copied) / items.n if copied else 0.0
    if copy > prior:
        return copy, "copy a right-type answer stated in the prompt"
    return prior, "answer prior (most frequent gold answer)"
