"""Per-request routers: one decision per document, the same on every backend.

A routing method's module exposes ``request_router(spec, scorer) -> Router``; the backends ask the
router for each batch of requests and serve every bucket with lm-eval's own code path
(``models.routing``). ``scorer`` builds a ``SeqArrowScorer`` on the base model, for the routers
that need one (backends differ in how they expose base hidden states); others ignore it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class RouteItem:
    """What a router may look at: the task, the document, and the document's first context."""

    task: str
    doc_id: int
    context: str


@dataclass(frozen=True)
class Route:
    """The experts serving one document (their delta mean when more than one); () is the base."""

    experts: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        if not self.experts:
            return "base"
        if len(self.experts) == 1:
            return self.experts[0]
        return "+".join(f"{e}*{w:g}" for e, w in zip(self.experts, self.weights, strict=True))


class Router(Protocol):
    def routes(self, items: list[RouteItem]) -> list[Route]: ...


ScorerFactory = Callable[[], Any]
