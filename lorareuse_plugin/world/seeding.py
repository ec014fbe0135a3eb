"""Seeding that never depends on ``PYTHONHASHSEED`` or on call order elsewhere in the process.

Each consumer derives its own ``random.Random`` from a sha256 of named parts, so adding a new
generator can never shift the random stream of an existing one.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from the ``repr``-free string join of ``parts``."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def rng(*parts: object) -> random.Random:
    """An independent RNG for one purpose, e.g. ``rng("twohop", "F", seed, "people")``."""
    return random.Random(derive_seed(*parts))
