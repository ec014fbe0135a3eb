"""lorareuse: do reused LoRA adapters compose knowledge, or only look like it?

Importing this package is cheap (no torch, no vLLM, no lm-eval); heavy modules load on use.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

TASKS_DIR: Path = Path(__file__).resolve().parent.parent / "lm_eval_tasks"
"""Our lm-eval task YAMLs (``lm_eval --include_path``); a sibling package in any install."""
