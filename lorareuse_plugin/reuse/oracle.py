"""``oracle``: route each task to the expert trained for it — an upper bound, not a method.

A probe of member m goes to m; the composed test and the target probe go to ``target``; a task
of ours whose own expert is not among the chosen experts gets the base model, and the route table
in ``get_model_info()`` says so. ``routes=GLOB:expert+GLOB:expert`` (``|`` also separates) sends
tasks matching a shell-style glob to an expert, first match first. A task that is not ours and
matches no route is refused — never silently served by the base — unless ``route_default=base``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError

ROUTE_DEFAULTS = ("refuse", "base")


@dataclass(frozen=True)
class Params:
    routes: str | None = field(
        default=None, metadata={"help": "task globs to experts: GLOB:expert+GLOB:expert (first match wins)"}
    )
    route_default: str = field(default="refuse", metadata={"help": "a task not ours matching no route: refuse | base"})

    def validate(self, method: str) -> None:
        if self.route_default not in ROUTE_DEFAULTS:
            raise ConfigError(
                f"{method}: route_default={self.route_default!r} is not one of {', '.join(ROUTE_DEFAULTS)}"
            )
        overrides(self)


def overrides(params: Params) -> list[tuple[str, str]]:
    """(task glob, expert) pairs in the order given."""
    out = []
    for item in (params.routes or "").replace("|", "+").split("+"):
        if not item.strip():
            continue
        task, sep, expert = item.rpartition(":")
        if not sep or not task.strip() or not expert.strip():
            raise ConfigError(f"oracle: routes entry {item!r} must look like TASK_GLOB:expert, e.g. mmlu_*:hop1")
        out.append((task.strip(), expert.strip()))
    return out


def check_spec(spec) -> None:
    bad = [e for _, e in overrides(spec.params) if e not in spec.experts]
    if bad:
        raise ConfigError(
            f"oracle: routes name expert(s) {', '.join(bad)} not among the chosen experts {'+'.join(spec.experts)}: "
            "add them to experts= or route to a chosen one"
        )


def expert_for_task(task_name: str, experts: tuple[str, ...], params: Params, catalog: bool = True) -> str | None:
    """The chosen expert for ``task_name``, or None (base model). ``catalog=False`` (adapters not built
    by us: their names mean nothing to our task catalog) routes every task by ``routes=`` alone."""
    name = task_name.split("::")[-1]
    for glob, expert in overrides(params):
        if fnmatch.fnmatchcase(task_name, glob) or fnmatch.fnmatchcase(name, glob):
            return expert
    from lorareuse_plugin.data.catalog import specs_by_name

    spec = specs_by_name().get(name) if catalog else None
    if spec is None:
        if params.route_default == "base":
            return None
        whose = "is not one of ours" if catalog else "has no expert of ours (the adapters are foreign)"
        raise ConfigError(
            f"oracle: task {task_name!r} {whose} and no routes= entry matches it: "
            f"add routes={name}:<expert> (globs allowed) or route_default=base to serve it with the base model"
        )
    own = spec.split.removeprefix("probe_") if spec.split.startswith("probe_") else "target"
    return own if own in experts else None


class OracleRouter:
    """Each task to the expert trained for it (``expert_for_task``); the base where none is chosen."""

    def __init__(self, spec) -> None:
        self.experts, self.params, self.catalog = spec.experts, spec.params, spec.library.has_world

    def routes(self, items):
        from lorareuse_plugin.reuse.router import Route

        out = []
        for item in items:
            e = expert_for_task(item.task or "", self.experts, self.params, catalog=self.catalog)
            out.append(Route((e,), (1.0,)) if e else Route())
        return out


def request_router(spec, scorer=None) -> OracleRouter:
    return OracleRouter(spec)
