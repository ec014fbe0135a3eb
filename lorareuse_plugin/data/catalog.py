"""The task catalog: every lm-eval task and group we ship, as data.

The YAML files under ``lm_eval_tasks/`` are rendered from this catalog
(``python -m lorareuse_plugin.data.catalog``) and a test keeps them in sync, so the catalog is
the one place that says which task evaluates which split in which answer form. Later stages
(oracle routing, the leaderboard) read task -> (family, familiarity, split) from here too.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from lorareuse_plugin.data.families import FAMILIES, default_sizes

TASK_VERSION = 1.0
FORMS = {
    "gen": "_gen_template_yaml",
    "cot": "_cot_template_yaml",
    "mc": "_mc_template_yaml",
    "ctx": "_ctx_template_yaml",
    "ctx_mc": "_ctx_mc_template_yaml",
}
FORM_METRIC = {
    "gen": ("exact_match", "extract"),
    "cot": ("exact_match", "extract"),
    "mc": ("acc", "none"),
    "ctx": ("exact_match", "extract"),
    "ctx_mc": ("acc", "none"),
}
# families whose composed test states its facts in the in-context forms (math_ss needs no fact)
CONTEXT_FAMILIES = ("twohop", "math_ks")
_HEADER = "# Generated from lorareuse_plugin/data/catalog.py by `python -m lorareuse_plugin.data.catalog`.\n"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    family: str
    familiarity: str | None
    split: str
    form: str  # gen | cot | mc
    folder: str
    description: str


@functools.cache
def specs_by_name() -> dict[str, TaskSpec]:
    """Every task's spec by name, built once (routing and the leaderboard ask per request / row)."""
    return {s.name: s for s in task_specs()}


def _fam_suffix(fam: str | None) -> str:
    return f"_{fam.lower()}" if fam else ""


def task_specs() -> list[TaskSpec]:
    specs: list[TaskSpec] = []
    for family in FAMILIES.values():
        fams = [f.value for f in family.familiarities] or [None]
        for fam in fams:
            base = f"lorareuse_{family.name}{_fam_suffix(fam)}"
            label = f"{family.name}{' ' + fam if fam else ''}"
            forms = [
                ("gen", "", "direct answer"),
                ("cot", "_cot", "chain of thought"),
                ("mc", "_mc", "multiple choice"),
            ]
            if family.name in CONTEXT_FAMILIES:
                forms += [
                    ("ctx", "_ctx", "both facts (and a distractor chain) stated in the prompt, direct answer"),
                    ("ctx_mc", "_ctx_mc", "both facts (and a distractor chain) stated in the prompt, multiple choice"),
                ]
            for form, suffix, what in forms:
                specs.append(
                    TaskSpec(
                        base + suffix,
                        family.name,
                        fam,
                        "test",
                        form,
                        family.name,
                        f"{label}: composed test, {what}",
                    )
                )
            for member in family.members:
                name = (
                    f"lorareuse_{member}{_fam_suffix(fam)}"
                    if family.name == "twohop"
                    else f"lorareuse_{family.name}_{member}{_fam_suffix(fam)}"
                )
                specs.append(
                    TaskSpec(
                        name,
                        family.name,
                        fam,
                        f"probe_{member}",
                        "gen",
                        family.name,
                        f"{label}: probe of the {member} expert's facts/skill on test entities",
                    )
                )
            specs.append(
                TaskSpec(
                    f"lorareuse_target_{family.name}{_fam_suffix(fam)}",
                    family.name,
                    fam,
                    "probe_target",
                    "gen",
                    family.name,
                    f"{label}: composed task on the target expert's own (disjoint) entities",
                )
            )
    return specs


def group_specs() -> dict[str, tuple[list[str], tuple[tuple[str, str], ...]]]:
    """group name -> (members, the (metric, filter) pairs it aggregates over its leaf tasks).

    A form's group has its form's one metric; a container (``lorareuse_twohop``, ``lorareuse``) mixes
    generation and multiple-choice forms, so it reports both metrics, each pooled (weighted by size)
    over the leaf tasks that have it: ``--tasks lorareuse`` ends in one summary row per group."""
    specs = task_specs()
    by = lambda pred: [s.name for s in specs if pred(s)]  # noqa: E731
    groups: dict[str, tuple[list[str], tuple[tuple[str, str], ...]]] = {}
    for area, families in (("twohop", ("twohop",)), ("math", ("math_ks", "math_ss"))):
        for form in FORMS:
            groups[f"lorareuse_{area}_{form}"] = (
                by(lambda s, fs=families, fo=form: s.family in fs and s.split == "test" and s.form == fo),
                (FORM_METRIC[form],),
            )
        groups[f"lorareuse_{area}"] = ([f"lorareuse_{area}_{form}" for form in FORMS], _both(FORMS))
    groups["lorareuse_probes"] = (by(lambda s: s.split != "test"), (FORM_METRIC["gen"],))
    groups["lorareuse"] = (["lorareuse_twohop", "lorareuse_math", "lorareuse_probes"], _both(FORMS))
    return groups


def _both(forms) -> tuple[tuple[str, str], ...]:
    return tuple(dict.fromkeys(FORM_METRIC[f] for f in forms))


def all_names() -> set[str]:
    """Every task and group name we ship."""
    return {s.name for s in task_specs()} | set(group_specs())


def leaf_tasks(names: list[str]) -> list[TaskSpec]:
    """Our tasks among ``names``, groups expanded to their leaves (other names are skipped)."""
    groups, tasks = group_specs(), specs_by_name()
    out: dict[str, TaskSpec] = {}
    todo = list(names)
    while todo:
        name = todo.pop(0)
        if name in groups:
            todo = list(groups[name][0]) + todo
        elif name in tasks:
            out.setdefault(name, tasks[name])
    return list(out.values())


# the keys each task's YAML sets under dataset_kwargs (which family and split it is; the rest is metadata):
# a --metadata copy of one reached load_docs twice (a TypeError), so `lorareuse-eval` refuses them
TASK_KEYS = ("family", "familiarity", "split")


def task_world_args(spec: TaskSpec) -> dict[str, object]:
    """The ``lorareuse_*`` keys a task's YAML sends to ``load_docs`` (its dataset_kwargs and metadata)."""
    sizes = default_sizes(spec.family, spec.familiarity)
    args: dict[str, object] = {"lorareuse_family": spec.family}
    if spec.familiarity:
        args["lorareuse_familiarity"] = spec.familiarity
    args.update(
        {
            "lorareuse_split": spec.split,
            "lorareuse_seed": 0,
            "lorareuse_n_test": sizes.n_test,
            "lorareuse_n_target": sizes.n_target,
            "lorareuse_n_skill": sizes.n_skill,
        }
    )
    return args


def render_task(spec: TaskSpec) -> str:
    args = task_world_args(spec)
    fixed = {f"lorareuse_{k}" for k in TASK_KEYS}
    lines = [
        _HEADER.rstrip("\n"),
        f"# {spec.description}",
        f"task: {spec.name}",
        f"include: ../{FORMS[spec.form]}",
        "dataset_kwargs:",
        *(f"  {k}: {v}" for k, v in args.items() if k in fixed),
        "metadata:",
        f"  version: {TASK_VERSION}",
        *(f"  {k}: {v}" for k, v in args.items() if k not in fixed),
    ]
    return "\n".join(lines) + "\n"


def render_group(name: str, members: list[str], metrics: tuple[tuple[str, str], ...]) -> str:
    lines = [_HEADER.rstrip("\n"), f"group: {name}", "task:"] + [f"  - {m}" for m in members]
    if metrics:
        lines.append("aggregate_metric_list:")
    for metric, filt in metrics:
        lines += [
            f"  - metric: {metric}",
            "    filter_list:",
            f"      - {filt}",
            "    aggregation: mean",
            "    weight_by_size: true",
        ]
    lines += ["metadata:", f"  version: {TASK_VERSION}"]
    return "\n".join(lines) + "\n"


def rendered_files() -> dict[str, str]:
    """relative path -> YAML text for every task and group."""
    files = {f"{s.folder}/{s.name}.yaml": render_task(s) for s in task_specs()}
    for name, (members, metrics) in group_specs().items():
        files[f"groups/{name}.yaml"] = render_group(name, members, metrics)
    return files


def write(task_dir: Path) -> list[str]:
    """Write every rendered YAML; remove stale generated ones. Returns the changed paths."""
    changed: list[str] = []
    files = rendered_files()
    for rel, text in files.items():
        path = task_dir / rel
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(rel)
    for path in task_dir.glob("*/*.yaml"):
        rel = path.relative_to(task_dir).as_posix()
        if rel not in files and path.read_text().startswith(_HEADER):
            path.unlink()
            changed.append(rel)
    return changed


if __name__ == "__main__":  # pragma: no cover - developer tool
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "lm_eval_tasks"
    for rel in write(target):
        print("wrote", rel)
