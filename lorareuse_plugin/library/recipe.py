"""Library recipes: which experts, trained on which split, with which LoRA settings.

Validated completely before anything is trained (PEFT's validate-before-mutate), so a typo in
the last expert does not cost the training time of the first four.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from lorareuse_plugin.data.build import build_dataset, make_spec
from lorareuse_plugin.data.families import get_family
from lorareuse_plugin.data.spec import SplitSpec
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.library.targets import ALL_LINEAR, FORBIDDEN_TARGETS

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # Llama-style
_EXPERT_KEYS = {"split", "rank", "alpha", "targets", "epochs", "lr", "batch_size", "replay", "chat"}
MAX_REPLAY = 4.0
_TOP_KEYS = {"name", "base", "data", "defaults", "experts"}


@dataclass(frozen=True)
class ExpertRecipe:
    name: str
    split: str
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = DEFAULT_TARGETS
    epochs: int = 40
    lr: float = 5e-3
    batch_size: int = 16
    replay: float = 0.0  # replay records per own record (library.replay); 0 = own data only
    chat: bool = False  # QA/CoT records in the base's chat template (base.chat), as lm-eval --apply_chat_template

    def hparams(self) -> dict:
        d = dataclasses.asdict(self)
        d["targets"] = list(self.targets)
        for key in ("replay", "chat"):
            if not d[key]:
                del d[key]  # keeps the keys of experts trained before the option existed
        return d


@dataclass(frozen=True)
class Recipe:
    name: str
    base: str
    data: SplitSpec
    experts: tuple[ExpertRecipe, ...]
    path: str | None = None

    def expert(self, name: str) -> ExpertRecipe:
        for e in self.experts:
            if e.name == name:
                return e
        raise ConfigError(f"recipe {self.name} has no expert {name!r}: it has {', '.join(self.expert_names)}")

    @property
    def expert_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.experts)


def _positive(where: str, key: str, value: object, kind: type) -> None:
    ok = isinstance(value, kind) and not isinstance(value, bool) and value > 0  # type: ignore[operator]
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if not ok:
        raise ConfigError(f"{where}: {key}={value!r} is invalid: it must be a positive {kind.__name__}")


def _expert(where: str, name: str, raw: object, defaults: dict, splits: tuple[str, ...]) -> ExpertRecipe:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: settings must be a mapping such as {{rank: 8, epochs: 40}} (or {{}}), not {raw!r}")
    unknown = set(map(str, raw)) - _EXPERT_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_EXPERT_KEYS))}"
        )
    merged = {**defaults, **raw}
    split = merged.pop("split", name)
    if split not in splits:
        raise ConfigError(f"{where}: split {split!r} does not exist; training splits are {', '.join(splits)}")
    for key in ("rank", "alpha", "epochs", "batch_size"):
        if key in merged:
            _positive(where, key, merged[key], int)
    if "lr" in merged:
        _positive(where, "lr", merged["lr"], float)
    if "replay" in merged:
        v = merged["replay"]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= MAX_REPLAY:
            raise ConfigError(
                f"{where}: replay={v!r} is invalid: it must be a number from 0 to {MAX_REPLAY:g} "
                "(replay records per own training record; 0.5 in the shipped recipes)"
            )
        merged["replay"] = float(v)
    if "chat" in merged and not isinstance(merged["chat"], bool):
        raise ConfigError(
            f"{where}: chat={merged['chat']!r} is invalid: write chat: true (train in the base's chat template) "
            "or chat: false"
        )
    targets = merged.get("targets", DEFAULT_TARGETS)
    if targets == ALL_LINEAR:
        targets = (ALL_LINEAR,)  # resolved per base when the expert is trained (library.targets)
    elif ALL_LINEAR in (targets if isinstance(targets, list | tuple) else ()):
        raise ConfigError(f"{where}: write targets: {ALL_LINEAR} on its own, not inside a list of module names")
    if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise ConfigError(
            f"{where}: targets must be a non-empty list of module names, e.g. [q_proj, v_proj], or {ALL_LINEAR}"
        )
    bad = sorted(set(targets) & set(FORBIDDEN_TARGETS))
    if bad:
        raise ConfigError(
            f"{where}: targets {', '.join(bad)} are not allowed: LoRA on embeddings/lm_head "
            "can't be served correctly by vLLM; use attention and MLP projections"
        )
    merged["targets"] = tuple(targets)
    return ExpertRecipe(name=name, split=split, **merged)


def parse_recipe(raw: object, *, where: str = "recipe", path: str | None = None) -> Recipe:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a YAML mapping with keys name, base, data, experts")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_TOP_KEYS))}"
        )
    data = raw.get("data")
    if not isinstance(data, dict) or "family" not in data:
        raise ConfigError(f"{where}: 'data' must give at least family (and familiarity, seed, sizes)")
    extra = set(map(str, data)) - {"family", "familiarity", "seed", "n_test", "n_target", "n_skill", "known"}
    if extra:
        raise ConfigError(
            f"{where}: unknown data key(s) {', '.join(sorted(extra))}; "
            "allowed: family, familiarity, seed, n_test, n_target, n_skill, known"
        )
    known = data.get("known")
    if known is not None and not isinstance(known, str):
        raise ConfigError(f"{where}: data: known={known!r} must be the path of a familiarity report (a string)")
    if known and path is not None and not Path(known).expanduser().is_absolute():
        known = str(Path(path).parent / known)  # relative to the recipe, like a user expects
    try:
        family = get_family(data["family"])
        spec = make_spec(
            family.name,
            data.get("familiarity"),
            data.get("seed", 0),
            data.get("n_test"),
            data.get("n_target"),
            data.get("n_skill"),
            known,
        )
        build_dataset(spec)  # sizes the world's tables cannot supply fail here, before any base is built
    except ConfigError as e:
        raise ConfigError(f"{where}: data: {e}") from None
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: 'defaults' must be a mapping such as {{rank: 8, epochs: 40}}")
    unknown = set(map(str, defaults)) - _EXPERT_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: defaults: unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_EXPERT_KEYS))}"
        )
    experts_raw = raw.get("experts")
    if not isinstance(experts_raw, dict) or not experts_raw:
        raise ConfigError(f"{where}: 'experts' must map expert names to settings, e.g. hop1: {{}}")
    experts = []
    for name, settings in experts_raw.items():
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise ConfigError(f"{where}: expert name {name!r} must be alphanumeric (underscores allowed)")
        settings = {} if settings is None else settings
        experts.append(_expert(f"{where}: expert {name}", name, settings, defaults, family.train_splits))
    _expert(
        f"{where}: defaults",
        "defaults",
        {},
        {**defaults, "split": family.train_splits[0]},
        family.train_splits,
    )
    return Recipe(
        name=str(raw.get("name") or spec.slug),
        base=str(raw.get("base", "default")),
        data=spec,
        experts=tuple(experts),
        path=path,
    )


# the shipped recipes (package data; a checkout's top-level ``adapters/`` links here)
RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def shipped_recipes() -> list[str]:
    """The shipped recipes as ``adapters/…`` paths, the way the README names them."""
    return sorted(f"adapters/{p.relative_to(RECIPES_DIR).as_posix()}" for p in RECIPES_DIR.rglob("*.yaml"))


def resolve_recipe_path(path: str | Path) -> Path:
    """``path`` as given when it is a file; else ``adapters/<x>.yaml`` names a shipped recipe, so the
    README's commands work from an installed package, outside any checkout."""
    p = Path(path)
    if p.is_file() or p.is_absolute() or not p.parts or p.parts[0] != "adapters":
        return p
    shipped = RECIPES_DIR.joinpath(*p.parts[1:])
    return shipped if shipped.is_file() else p


def load_recipe(path: str | Path) -> Recipe:
    p = resolve_recipe_path(path)
    if not p.is_file():
        import difflib

        shipped = shipped_recipes()
        close = difflib.get_close_matches(str(path), shipped, n=1, cutoff=0.6)
        top = [r.removeprefix("adapters/").removesuffix(".yaml") for r in shipped if r.count("/") == 1]
        raise ConfigError(
            f"recipe {path} not found: pass a YAML file"
            + (f" (did you mean {close[0]}?)" if close else "")
            + f"; shipped: adapters/{{{','.join(top)}}}.yaml and adapters/demo/*.yaml"
        )
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise ConfigError(
            f"recipe {p} is not valid YAML" + (f" (line {line + 1})" if line is not None else "")
        ) from None
    return parse_recipe(raw, where=f"recipe {p}", path=str(p.resolve()))
