"""Familiarity: which hops of a composed question a base model could know from pretraining."""

from __future__ import annotations

import enum

from lorareuse_plugin.errors import ConfigError


class Familiarity(enum.StrEnum):
    """F: every hop fictional (only expert data has it); H: first hop fictional, second real;
    R: every hop real (in the embedded base's pretraining corpus, and in any real LLM's)."""

    F = "F"
    H = "H"
    R = "R"

    @classmethod
    def parse(cls, value: str | Familiarity, allowed: tuple[Familiarity, ...] | None = None) -> Familiarity:
        """Accept ``f``/``F``/``fictional``; raise a one-line ``ConfigError`` otherwise."""
        if isinstance(value, Familiarity):
            fam = value
        else:
            text = str(value).strip().upper()
            aliases = {"FICTIONAL": "F", "HYBRID": "H", "REAL": "R"}
            text = aliases.get(text, text)
            try:
                fam = cls(text)
            except ValueError:
                choices = ", ".join(f.value for f in (allowed or tuple(cls)))
                raise ConfigError(f"unknown familiarity {value!r}: use one of {choices}") from None
        if allowed is not None and fam not in allowed:
            choices = ", ".join(f.value for f in allowed) or "none (omit it)"
            raise ConfigError(f"familiarity {fam.value} is not defined for this family: use {choices}")
        return fam
