"""Say each lm-eval warning once per leaderboard, not once per run.

A ladder is dozens of in-process ``simple_evaluate`` calls; lm-eval repeats the same advice on
every one ("Custom kwargs can be passed to `--metadata`…" per task, "`pretrained` model kwarg is
not of type `str`…" per model) — 232 lines for one two-hop F ladder, which buried the results.
The first of each distinct message still gets through, except lm-eval's advice about what a ladder
does on purpose (``NOT_FOR_A_LADDER``), which is not said at all; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

LM_EVAL_LOGGERS = ("lm_eval.api.task", "lm_eval.models.huggingface", "lm_eval.evaluator")
# advice for a user who did not mean to do what a ladder does on purpose (pass a loaded model, pass our
# world's metadata to every task): said inside a ladder it only misleads, so it is not said at all
NOT_FOR_A_LADDER = (
    "`pretrained` model kwarg is not of type `str`",
    "Passed an already-initialized model through `pretrained`",
    "Custom kwargs can be passed to `--metadata`",
)


class OncePerMessage(logging.Filter):
    """Lets a message through the first time; a message that differs only in its leading
    ``<task name>: `` (lm-eval prefixes per-task advice so) counts as the same."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = re.sub(r"^\S+: ", "", record.getMessage())
        if message.startswith(NOT_FOR_A_LADDER) or message in self.seen:
            return False
        self.seen.add(message)
        return True


class ExpectedOfOurGroups(OncePerMessage):
    """Once per message, and not at all lm-eval's note that a metric is missing in some tasks of
    one of our container groups: ``lorareuse_twohop`` pools generation and multiple-choice tasks,
    so each of its two metrics is missing in the other form's tasks by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Group 'lorareuse") and "is missing in" in message:
            return False
        return super().filter(record)


def quiet_expected_warnings() -> None:
    """For a CLI process (``lorareuse-eval``): lm-eval's handler says each distinct warning once and
    leaves out what our task layout does on purpose (see ``ExpectedOfOurGroups``)."""
    handlers = logging.getLogger("lm_eval").handlers
    for handler in handlers:
        if not any(isinstance(f, ExpectedOfOurGroups) for f in handler.filters):
            handler.addFilter(ExpectedOfOurGroups())


@contextlib.contextmanager
def each_warning_once(names: tuple[str, ...] = LM_EVAL_LOGGERS) -> Iterator[OncePerMessage]:
    """Within the block, each distinct message on these loggers is emitted once."""
    once = OncePerMessage()
    loggers = [logging.getLogger(n) for n in names]
    for lg in loggers:
        lg.addFilter(once)
    try:
        yield once
    finally:
        for lg in loggers:
            lg.removeFilter(once)


@contextlib.contextmanager
def replaced(owner: object, name: str, value: object) -> Iterator[None]:
    """``owner.name`` is ``value`` within the block; the original is put back on exit."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def without_progress_bars() -> Iterator[None]:
    """Within the block, every tqdm bar draws to /dev/null (lm-eval draws ~12 per run: one per task
    while building requests, one per request type — ~1,400 lines for the default demo). The ladder
    prints its own line per run instead. Bars still run (vLLM divides by their elapsed time, so
    they cannot simply be disabled). Restored on exit."""
    import os

    from tqdm import std

    original = std.tqdm.__init__
    with open(os.devnull, "w") as sink:

        def to_sink(self, *args, **kwargs):
            kwargs["file"] = sink
            original(self, *args, **kwargs)

        with replaced(std.tqdm, "__init__", to_sink):
            yield


@contextlib.contextmanager
def quiet_git_hash() -> Iterator[None]:
    """Within the block, lm-eval's per-run ``git describe`` keeps git's stderr to itself: outside a
    git checkout every run printed ``fatal: not a git repository``. Same value recorded (the hash,
    or lm-eval's fallback from the working directory); restored on exit."""
    import os
    import subprocess

    from lm_eval import evaluator
    from lm_eval.loggers.utils import get_commit_from_path

    def git_hash() -> str | None:
        try:
            out = subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL)  # noqa: S607
            return out.strip().decode()
        except (subprocess.CalledProcessError, OSError):
            return get_commit_from_path(os.getcwd())

    with replaced(evaluator, "get_git_commit_hash", git_hash):
        yield


@contextlib.contextmanager
def env_info_once() -> Iterator[None]:
    """Within the block, lm-eval's per-run environment report (torch's ``collect_env``: eleven
    subprocesses, ≈ 0.45 s on 2 cores — 40 s of a 96-run demo ladder) is collected once and the same
    values are written into every run's results; restored on exit."""
    from lm_eval import evaluator

    original = evaluator.add_env_info
    collected: dict = {}

    def add_env_info(storage: dict) -> None:
        if not collected:
            original(collected)
        storage.update(collected)

    with replaced(evaluator, "add_env_info", add_env_info):
        yield


@contextlib.contextmanager
def ladder_quiet() -> Iterator[None]:
    """Everything a ladder's runs need quieted, in one block: each lm-eval warning once, no progress
    bars, no git noise, one environment report (the leaderboard and each of its worker processes)."""
    with each_warning_once(), without_progress_bars(), quiet_git_hash(), env_info_once():
        yield
