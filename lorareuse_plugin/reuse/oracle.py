"""``oracle``: route each task to the expert trained for it — an upper bound, not a method.

A probe of member m goes to m; the composed test and the target probe go to ``target``. A task
whose own expert is not among the chosen experts gets the base model, and the route table in
``get_model_info()`` says so. ``routes=task:expert|…`` overrides single tasks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError


@dataclass(frozen=True)
class Params:
    routes: str | None = field(default=None, metadata={"help": "overrides: task:expert|task:expert"})


def overrides(params: Params) -> dict[str, str]:
    out = {}
    for item in (params.routes or "").split("|"):
        if not item.strip():
            continue
        task, sep, expert = item.partition(":")
        if not sep or not task.strip() or not expert.strip():
            raise ConfigError(f"oracle: routes entry {item!r} must look like task:expert")
        out[task.strip()] = expert.strip()
    return out


def check_spec(spec) -> None:
    bad = [e for e in overrides(spec.params).values() if e not in spec.experts]
    if bad:
        raise ConfigError(
            f"oracle: routes name expert(s) {', '.join(bad)} not among the chosen experts {'+'.join(spec.experts)}: "
            "add them to experts= or route to a chosen one"
        )


@functools.cache
def _task_specs_by_name() -> dict:
    """Built once: routing asks for every request."""
    from lorareuse_plugin.data.catalog import task_specs

    return {s.name: s for s in task_specs()}


def expert_for_task(task_name: str, experts: tuple[str, ...], params: Params) -> str | None:
    """The chosen expert trained for ``task_name``, or None (base model)."""
    table = overrides(params)
    if task_name in table:
        return table[task_name]
    spec = _task_specs_by_name().get(task_name.split("::")[-1])
    if spec is None:
        return None
    own = spec.split.removeprefix("probe_") if spec.split.startswith("probe_") else "target"
    return own if own in experts else None
