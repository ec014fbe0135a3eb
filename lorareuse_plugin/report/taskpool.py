"""The leaderboard's task pool: our catalog's tasks and anyone else's lm-eval tasks, side by side.

A task of ours is described by the catalog (the world's split it tests, its answer form, the
metric that scores it). A task that is not ours (``--include_path`` YAML, or an lm-eval built-in)
is described by the run itself: lm-eval's config for it names its output type and metrics, and the
first metric listed (with its first filter) scores it. Such tasks have no split of our world, so
the composition gap and the paper's claims — which are about our composed tests — skip them; cells,
chance and paired comparisons do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lorareuse_plugin.errors import ConfigError


@dataclass(frozen=True)
class TaskInfo:
    """How one task's results are read."""

    name: str
    split: str | None  # our world's split; None for a task that is not ours
    form: str  # ours: gen | cot | mc | ctx | ctx_mc; others: "mc" for multiple_choice, else lm-eval's output_type
    metric: str
    filter: str

    @property
    def ours(self) -> bool:
        return self.split is not None


@dataclass(frozen=True)
class TaskPool:
    """Requested tasks and where the ones that are not ours are found."""

    ours: tuple[str, ...]
    others: tuple[str, ...]
    include_paths: tuple[Path, ...] = ()
    builtin: bool = False  # some task is an lm-eval built-in: index lm-eval's own tasks too

    @property
    def names(self) -> list[str]:
        return [*self.ours, *self.others]

    def task_manager(self, metadata: dict | None = None):
        from lm_eval.tasks import TaskManager

        import lorareuse_plugin

        paths = [str(lorareuse_plugin.TASKS_DIR), *map(str, self.include_paths)]
        return TaskManager(include_path=paths, include_defaults=self.builtin, metadata=metadata)

    def files_sha256(self) -> str:
        """Every file under the include paths (YAML, hooks, local data): a changed task is another run."""
        digest = hashlib.sha256()
        for root in self.include_paths:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()


def resolve_tasks(tasks: list[str], include_paths: list[str | Path] | None = None) -> TaskPool:
    """Sort ``tasks`` into ours and others; refuse, in one line, a name nobody defines."""

    paths = []
    for p in include_paths or []:
        path = Path(p).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"--include_path {p}: not a directory; pass the folder that holds your task YAML files")
        paths.append(path)
    from lorareuse_plugin.data.catalog import specs_by_name

    catalog = set(specs_by_name())
    mistyped = sorted(t for t in tasks if t.startswith("lorareuse_") and t not in catalog)
    if mistyped:  # our prefix: a typo of ours, not somebody else's task
        import difflib

        hints = [difflib.get_close_matches(t, sorted(catalog), n=1) for t in mistyped]
        hint = "; ".join(f"did you mean {h[0]}?" for h in hints if h)
        raise ConfigError(
            f"unknown task(s) {', '.join(mistyped)}: see `lorareuse tasks`" + (f" ({hint})" if hint else "")
        )
    ours = tuple(t for t in tasks if t in catalog)
    others = tuple(t for t in tasks if t not in catalog)
    if not others:
        return TaskPool(ours, (), tuple(paths))
    found = set(TaskPool((), (), tuple(paths)).task_manager().all_tasks) if paths else set()
    builtin = [t for t in others if t not in found]
    if builtin:
        from lm_eval.tasks import TaskManager

        unknown = sorted(set(builtin) - set(TaskManager(include_defaults=True).all_tasks))
        if unknown:
            where = f"under --include_path {', '.join(map(str, paths))}" if paths else "(no --include_path given)"
            raise ConfigError(
                f"unknown task(s) {', '.join(unknown)}: not ours (see `lorareuse tasks`), not lm-eval's and not "
                f"{where}; pass --include_path DIR with your task YAML"
            )
    return TaskPool(ours, others, tuple(paths), builtin=bool(builtin))


def task_info(task: str, results: dict) -> TaskInfo:
    """Ours: from the catalog. Others: from lm-eval's config and results for the run."""
    from lorareuse_plugin.data.catalog import FORM_METRIC, specs_by_name

    spec = specs_by_name().get(task)
    if spec is not None:
        metric, filt = FORM_METRIC[spec.form]
        return TaskInfo(task, spec.split, spec.form, metric, filt)
    config = results.get("configs", {}).get(task, {})
    scores = results["results"][task]
    keys = [k for k in scores if "," in k and not k.split(",")[0].endswith("_stderr")]
    listed = [m["metric"] for m in config.get("metric_list", []) if isinstance(m.get("metric"), str)]
    metric = next((m for m in listed if any(k.startswith(f"{m},") for k in keys)), None)
    key = next((k for k in keys if metric is None or k.startswith(f"{metric},")), None)
    if key is None:
        raise ConfigError(f"task {task}: its results hold no metric to rank by; give it a metric_list")
    metric, filt = key.split(",", 1)
    output = str(config.get("output_type", "generate_until"))
    return TaskInfo(task, None, "mc" if output == "multiple_choice" else output, metric, filt)
