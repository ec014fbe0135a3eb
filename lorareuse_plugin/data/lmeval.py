"""The ``custom_dataset`` hook our lm-eval task YAMLs call: generate the docs, no files, no hub.

lm-eval calls it as ``fn(**metadata, **dataset_kwargs)``, and metadata also carries every
``--model_args`` / ``--metadata`` entry, so we read only ``lorareuse_``-prefixed keys and
reject misspelt ones instead of silently evaluating the default world.
"""

from __future__ import annotations

from typing import Any

from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.errors import ConfigError

PREFIX = "lorareuse_"
KNOWN_KEYS = ("family", "familiarity", "split", "seed", "n_test", "n_target", "n_skill")


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


def load_docs(**kwargs: Any) -> dict[str, Any]:
    """Return ``{"test": datasets.Dataset}`` for the split the task names."""
    import datasets  # lazy: importing the package stays cheap

    args = dataset_args(kwargs)
    spec = make_spec(
        args["family"],
        args.get("familiarity"),
        args.get("seed", 0),
        args.get("n_test"),
        args.get("n_target"),
        args.get("n_skill"),
    )
    ds = build_dataset(spec)
    split = str(args["split"])
    if split not in ds.family.eval_splits:
        raise ConfigError(
            f"{PREFIX}split={split!r} is not an evaluation split of {ds.family.name}: "
            f"use one of {', '.join(ds.family.eval_splits)}"
        )
    return {"test": datasets.Dataset.from_list(ds.splits[split])}
