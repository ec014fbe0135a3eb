"""``random_route``: a seeded uniform random expert per document — the floor any router must beat.

The choice is a hash of (seed, task, document), so it is reproducible by seed and does not depend
on how requests are batched, on the backend, or on which other tasks run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError


@dataclass(frozen=True)
class Params:
    seed: int = field(default=0, metadata={"help": "seed of the random routes"})

    def validate(self, method: str) -> None:
        if self.seed < 0:
            raise ConfigError(f"{method}: seed={self.seed} is invalid: use a seed >= 0")


def pick(seed: int, task: str, doc_id: int, n: int) -> int:
    """Uniform over ``n`` experts, a pure function of its arguments."""
    digest = hashlib.sha256(f"{seed}\0{task}\0{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


class RandomRouter:
    def __init__(self, experts: tuple[str, ...], seed: int) -> None:
        self.experts, self.seed = experts, seed

    def routes(self, items):
        from lorareuse_plugin.reuse.router import Route

        return [Route((self.experts[pick(self.seed, i.task, i.doc_id, len(self.experts))],), (1.0,)) for i in items]


def request_router(spec, scorer=None) -> RandomRouter:
    return RandomRouter(spec.experts, spec.params.seed)
