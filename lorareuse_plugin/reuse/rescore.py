"""``rescore``: generate one candidate per expert and one from their delta mean, let the light
rescorer pick one per request.

Output-level selection (after "Light auxiliary models can rescore the outputs of larger ones"):
each candidate answers greedily, the rescorer (``lorareuse rescorer build``) scores how faithful each
answer's chain is to the question, the most faithful one is served (ties: the first candidate, experts
in the order given, then the mean). A log-likelihood document is scored by the candidate whose greedy
answer to its context the rescorer picks. Cost per request: one generation per candidate plus one
rescorer pass per sentence of each candidate — reported in the run's ``model_info``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lorareuse_plugin.errors import ConfigError

MEAN = "delta_mean"  # the averaged candidate
SCORES = ("auto", "pll", "nsp", "head", "rule")


@dataclass(frozen=True)
class Params:
    rescorer: str = field(default="", metadata={"help": "a built rescorer dir (default: the default build)"})
    score: str = field(default="auto", metadata={"help": "auto (the build's best) | pll | nsp | head | rule"})

    def validate(self, method: str) -> None:
        if self.score not in SCORES:
            raise ConfigError(f"{method}: score={self.score!r} is unknown: use one of {', '.join(SCORES)}")


def rescorer_path(params: Params) -> Path:
    """The rescorer to load; a one-line error with the fix when there is none built."""
    from lorareuse_plugin.rescore.model import default_rescorer, read_info

    if params.rescorer:
        path = Path(params.rescorer).expanduser()
        if read_info(path) is None:
            raise ConfigError(f"rescore: {path} holds no built rescorer: run `lorareuse rescorer build --out {path}`")
        return path
    path = default_rescorer()
    if path is None:
        raise ConfigError("rescore needs a built rescorer: run `lorareuse rescorer build` first (~2 min on 2 cores)")
    return path


def check_spec(spec) -> None:
    if len(spec.experts) < 1:
        raise ConfigError("rescore needs at least one expert: experts=hop1+hop2")
    rescorer_path(spec.params)


def candidates(experts: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Each expert alone, then (two or more experts) their delta mean."""
    return tuple((e,) for e in experts) + ((tuple(experts),) if len(experts) > 1 else ())


def label(candidate: tuple[str, ...]) -> str:
    return candidate[0] if len(candidate) == 1 else f"{MEAN}[{'+'.join(candidate)}]"


class Selector:
    """Picks, per request, the candidate whose answer the rescorer finds most faithful."""

    def __init__(self, params: Params) -> None:
        from lorareuse_plugin.rescore.model import Rescorer, best_score

        self.model = Rescorer.load(rescorer_path(params))
        self.score = best_score(self.model.info) if params.score == "auto" else params.score
        self.passes = 0  # rescorer forward passes (one per sentence scored), for the cost report

    def pick(self, question: str, answers: list[str]) -> int:
        probs = self.model.faithful([question] * len(answers), answers, self.score)
        self.passes += sum(self._passes(a) for a in answers)
        return max(range(len(answers)), key=lambda i: (probs[i], -i))

    def _passes(self, answer: str) -> int:
        """Rescorer forward passes one answer costs: a sentence each (nsp), a named word each (pll),
        one (head), none (rule)."""
        import re

        from lorareuse_plugin.rescore.model import ENTITY
        from lorareuse_plugin.rescore.rule import sentences

        if self.score == "nsp":
            return len(sentences(answer))
        if self.score == "pll":
            return sum(bool(ENTITY.search(w)) for w in re.findall(r"\w+", " ".join(sentences(answer))))
        return int(self.score == "head")
