"""Typed method parameters: a frozen dataclass per method, parsed from strings with clear errors."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from lorareuse_plugin.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class NoParams:
    """For methods without parameters."""


def described(cls: type) -> list[tuple[str, Any, str]]:
    """(name as the user writes it, default, help) per parameter."""
    shown = {v: k for k, v in getattr(cls, "ALIASES", {}).items()}
    return [(shown.get(f.name, f.name), f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]


def help_of(cls: type) -> dict[str, str]:
    return {name: text for name, _, text in described(cls)}


def _convert(method: str, name: str, kind: Any, value: Any) -> Any:
    args = typing.get_args(kind)
    if type(None) in args:  # Optional[...]
        if value in (None, "None", "none", ""):
            return None
        kind = next(a for a in args if a is not type(None))
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "1")
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{method}: {name}={value!r} is not a valid {getattr(kind, '__name__', kind)}") from None


def parse_params(method: str, cls: type, raw: dict[str, Any]) -> Any:
    """Build ``cls`` from ``raw`` (strings allowed); unknown keys are refused by name."""
    aliases = getattr(cls, "ALIASES", {})  # user-facing names that are not identifiers (lambda)
    shown = {v: k for k, v in aliases.items()}
    raw = {aliases.get(k, k): v for k, v in raw.items()}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        allowed = ", ".join(shown.get(f, f) for f in fields) or "none"
        raise ConfigError(f"{method}: unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}")
    hints = typing.get_type_hints(cls)
    values = {k: _convert(method, shown.get(k, k), hints[k], v) for k, v in raw.items()}
    params = cls(**values)
    check = getattr(params, "validate", None)
    if check:
        check(method)
    return params
