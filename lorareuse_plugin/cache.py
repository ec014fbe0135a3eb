"""Where built artifacts live: ``$LORAREUSE_CACHE`` or ``~/.cache/lorareuse``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("LORAREUSE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lorareuse"
