"""Typed errors. Every user-facing failure is a ``LorareuseError`` whose message is one line that
names the problem and the fix; the CLI prints it and exits non-zero instead of showing a traceback."""

from __future__ import annotations


class LorareuseError(ValueError):
    """Base class: bad input or state that the user can fix."""


class ConfigError(LorareuseError):
    """An argument, recipe or task setting is invalid."""


class LeakageError(LorareuseError):
    """A test item appears in data an expert is trained on."""


class LibraryError(LorareuseError):
    """An expert library on disk is missing, corrupted, or does not fit the request."""
