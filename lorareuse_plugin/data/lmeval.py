"""The ``custom_dataset`` hook our lm-eval task YAMLs call: generate the docs, no files, no hub.

lm-eval calls it as ``fn(**metadata, **dataset_kwargs)``, and metadata also carries every
``--model_args`` / ``--metadata`` entry, so we read only ``lorareuse_``-prefixed keys and
reject misspelt ones instead of silently evaluating the default world.
"""

from __future__ import annotations

from typing import Any

from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.data.catalog import TASK_KEYS
from lorareuse_plugin.errors import ConfigError

PREFIX = "lorareuse_"
KNOWN_KEYS = ("family", "familiarity", "split", "seed", "n_test", "n_target", "n_skill", "known")


def dataset_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Our keys without the prefix; a one-line error for unknown ``lorareuse_*`` keys."""
    ours = {k[len(PREFIX) :]: v for k, v in kwargs.items() if k.startswith(PREFIX)}
    unknown = sorted(set(ours) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown task metadata key(s) {', '.join(PREFIX + k for k in unknown)}: "
            f"known keys are {', '.join(PREFIX + k for k in KNOWN_KEYS)}"
        )
    for required in ("family", "split"):
        if required not in ours:
            raise ConfigError(f"task config lacks {PREFIX}{required}: add it under dataset_kwargs")
    return ours


def check_metadata(metadata: dict[str, Any] | None) -> None:
    """``--metadata`` before any task or model loads: unknown ``lorareuse_*`` keys, and the keys each
    task fixes itself (which family and split it is), in one line."""
    ours = {k[len(PREFIX) :] for k in metadata or {} if str(k).startswith(PREFIX)}
    fixed = sorted(ours & set(TASK_KEYS))
    if fixed:
        raise ConfigError(
            f"--metadata {', '.join(PREFIX + k for k in fixed)}: each task sets this itself (which family and "
            "split it is): pick the task instead (`lorareuse tasks` lists them); --metadata takes "
            f"{', '.join(PREFIX + k for k in KNOWN_KEYS if k not in TASK_KEYS)}"
        )
    dataset_args({**(metadata or {}), PREFIX + "family": "-", PREFIX + "split": "-"})  # unknown keys


def check_task_names(names: list[str], our_names: set[str]) -> None:
    """A ``lorareuse*`` task name we do not ship, with the closest of ours (lm-eval's own answer is
    a traceback ending "Tasks not found"). Globs, paths and other suites' names pass on to lm-eval."""
    import difflib

    for name in names:
        if (
            not name.startswith("lorareuse")
            or name in our_names
            or any(c in name for c in "*?[/")
            or name.endswith(".yaml")
        ):
            continue
        close = difflib.get_close_matches(name, sorted(our_names), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown task {name!r}: {hint}(`lorareuse tasks` lists every task and group)")


def _spec_of(args: dict[str, Any]):
    """The world a task's (unprefixed) keys describe."""
    return make_spec(
        args["family"],
        args.get("familiarity"),
        args.get("seed", 0),
        args.get("n_test"),
        args.get("n_target"),
        args.get("n_skill"),
        args.get("known"),
    )


def check_library_worlds(task_names: list[str], metadata: dict[str, Any] | None, library: Any) -> None:
    """Before any model loads: each of our requested tasks (groups expanded) of the library's own
    family must generate the library's world with this ``--metadata`` — the same check ``load_docs``
    makes, which lm-eval reaches only after the model has loaded."""
    if not library:
        return
    from lorareuse_plugin.data.catalog import leaf_tasks, task_world_args

    for task in leaf_tasks(task_names):
        args = dataset_args({**task_world_args(task), **(metadata or {})})
        _check_library_world(library, _spec_of(args))


def load_docs(**kwargs: Any) -> dict[str, Any]:
    """Return ``{"test": …, "fewshot": …}`` for the split the task names: its documents, and
    same-format examples over entities no test world contains."""
    import datasets  # lazy: importing the package stays cheap

    args = dataset_args(kwargs)
    spec = _spec_of(args)
    _check_library_world(kwargs.get("library"), spec)
    ds = build_dataset(spec)
    split = str(args["split"])
    if split not in ds.family.eval_splits:
        raise ConfigError(
            f"{PREFIX}split={split!r} is not an evaluation split of {ds.family.name}: "
            f"use one of {', '.join(ds.family.eval_splits)}"
        )
    from lorareuse_plugin.data.fewshot import fewshot_docs

    return {
        "test": datasets.Dataset.from_list(ds.splits[split]),
        # --num_fewshot draws from here, never from the test split (see data/fewshot.py)
        "fewshot": datasets.Dataset.from_list(fewshot_docs(ds.family.name, split, spec=spec)),
    }


def _check_library_world(library: Any, spec) -> None:
    """With ``--model_args library=…`` (lm-eval passes model args here too), a task of the library's
    own family must be generated from the library's world, or the experts would be scored on
    entities they never saw."""
    if not library:
        return
    from pathlib import Path

    from lorareuse_plugin.library.manifest import MANIFEST

    manifest_file = Path(str(library)).expanduser() / MANIFEST
    if not manifest_file.is_file():
        return  # the model wrapper reports a missing library itself
    import json

    from lorareuse_plugin.library.manifest import read_manifest

    data = read_manifest(manifest_file.parent).get("data")  # a corrupt manifest is a one-line LibraryError
    if not isinstance(data, dict):
        return  # imported adapters: no world of ours to match
    fam = spec.familiarity.value if spec.familiarity else None
    if data.get("family") != spec.family or data.get("familiarity") != fam:
        return
    want = {"seed": data.get("seed"), **data.get("sizes", {})}
    have = {
        "seed": spec.seed,
        "n_test": spec.sizes.n_test,
        "n_target": spec.sizes.n_target,
        "n_skill": spec.sizes.n_skill,
    }
    diff = {k: (have[k], v) for k, v in want.items() if k in have and have[k] != v}
    recorded = data.get("known") or {}
    have = spec.known.report_sha256 if spec.known else None
    if recorded.get("report_sha256") != have:
        built = "from the facts its base knows" if recorded else "without known facts"
        this = "from other known facts" if recorded and have else "from known facts" if have else "without them"
        report = recorded.get("report") or "its familiarity report"
        fix = f'add --metadata \'{{"{PREFIX}known": "{report}"}}\'' if recorded else f"leave out {PREFIX}known"
        raise ConfigError(f"the library's {spec.slug} world was built {built}, this task's {this}: {fix}")
    if diff:
        fix = json.dumps({f"{PREFIX}{k}": v for k, (_, v) in diff.items()})
        trained = ", ".join(f"{k}={v[1]}" for k, v in diff.items())
        asked = ", ".join(f"{k}={v[0]}" for k, v in diff.items())
        raise ConfigError(
            f"the library was trained on another {spec.slug} world ({trained}) than this task generates "
            f"({asked}): add --metadata '{fix}'"
        )
