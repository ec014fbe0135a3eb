"""``lorareuse library build``: train every expert of a recipe with PEFT, resumably.

An expert is retrained only when its key (base, data hash, hyper-parameters) changed or its files
no longer match their hashes. Each expert dir is written to a temporary sibling and renamed into
place, and the manifest is replaced atomically after each expert, so an interrupted build leaves
a consistent library that the next build completes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from lorareuse_plugin.base.resolve import BaseRef, resolve_base
from lorareuse_plugin.data.build import GENERATOR_VERSION, build_dataset
from lorareuse_plugin.errors import ConfigError, LibraryError
from lorareuse_plugin.io import atomic_dir, sweep_stale
from lorareuse_plugin.library.manifest import (
    FORMAT_VERSION,
    INCOMPLETE,
    MANIFEST,
    adapter_hashes,
    read_manifest,
    verify_expert,
    write_manifest,
)
from lorareuse_plugin.library.recipe import ExpertRecipe, Recipe
from lorareuse_plugin.library.replay import REPLAY_VERSION, replay_count, replay_records

DTYPES = ("float32", "bfloat16", "float16")
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def own_probe_splits(members: tuple[str, ...], split: str) -> list[str]:
    """The probes an expert trained on ``split`` should pass."""
    if split in members:
        return [f"probe_{split}"]
    if split == "target":
        return ["probe_target"]
    if split == "union":
        return [f"probe_{m}" for m in members]
    if split == "ac":
        return ["test"]  # contaminated by design: its own facts are the composed test
    return [f"probe_{m}" for m in members] + ["probe_target"]  # oracle


def expert_key(base: BaseRef, data_hash: str, expert: ExpertRecipe, seed: int) -> str:
    blob = {
        "base": [base.config_hash, base.weights_hash],
        "data": data_hash,
        "hparams": expert.hparams(),
        # what the replay generator writes is part of what the expert learned
        **({"replay": REPLAY_VERSION} if expert.replay else {}),
        "seed": seed,
        "v": FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _check_known_base(recipe: Recipe, ref) -> None:
    """A world of known facts is about one base: training another base on it would test facts that
    base may not know."""
    known = recipe.data.known
    if known is None:
        return
    measured = json.loads(known.base) or {}
    if measured.get("weights_hash") not in (None, ref.weights_hash):
        raise ConfigError(
            f"the recipe's known facts were measured on {known.base_name}, not on this base ({ref.name_or_path}): "
            f"run `lorareuse familiarity --base {ref.name_or_path}` and point data: known at its report"
        )


def check_targets(model, recipe: Recipe, arch: str) -> None:
    """Every expert must hit at least one linear layer of the base, or LoRA would train nothing."""
    from lorareuse_plugin.library.targets import ALL_LINEAR, linear_suffixes, resolve_targets

    suffixes = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    linear = linear_suffixes(model)
    for e in recipe.experts:
        if not set(resolve_targets(model, e.targets)) & suffixes:
            raise ConfigError(
                f"expert {e.name}: base architecture {arch} has none of the target modules "
                f"{', '.join(e.targets)}; its linear layers are {', '.join(linear[:12])} "
                f"(name them in the recipe's targets, or write targets: {ALL_LINEAR})"
            )


def _check_out(out: Path, base: BaseRef | None) -> dict | None:
    """The existing manifest if ``out`` holds a library on this base, None if ``out`` is new/empty.
    Checks only; creates nothing, so a refused build leaves no trace. ``base=None`` checks everything
    but the base (done before the base is resolved, which may mean building it)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: pass a directory")
    if out.is_dir():
        sweep_stale(out, MANIFEST)  # a manifest temp file of a killed build is not content
    if out.is_dir() and (out / MANIFEST).exists():
        try:
            manifest = read_manifest(out)
        except LibraryError as e:
            raise ConfigError(f"--out {out} holds a broken library ({e}); pass a new --out or remove {out}") from None
        old = manifest["base"]
        if base is not None and (
            old["config_hash"] != base.config_hash or old.get("weights_hash") != base.weights_hash
        ):
            raise ConfigError(f"{out} holds a library built on another base ({old['name_or_path']}): pass a new --out")
        return manifest
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is not empty and holds no {MANIFEST}: pass a new or empty directory")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write to --out {out} ({existing} is not a writable directory): pass a writable directory"
        )
    return None


def build_library(
    recipe: Recipe,
    out: str | Path,
    *,
    base: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train what is missing or stale; return the manifest."""
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r} is invalid: use one of {', '.join(DTYPES)}")
    if not _DEVICE.match(str(device)):
        raise ConfigError(f"--device {device!r} is invalid: use cpu, cuda, cuda:<index> or mps")
    out = Path(out).expanduser().resolve()
    _check_out(out, None)
    ref = resolve_base(base or recipe.base, progress=progress)
    existing = _check_out(out, ref)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorareuse_plugin.base.chat import has_chat_template
    from lorareuse_plugin.base.evaluate import accuracy
    from lorareuse_plugin.library.train import train_expert

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA GPU is visible: use --device cpu")
    _check_known_base(recipe, ref)
    ds = build_dataset(recipe.data)
    tok = AutoTokenizer.from_pretrained(ref.name_or_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    chat = [e.name for e in recipe.experts if e.chat]
    if chat and not has_chat_template(tok):
        raise ConfigError(
            f"expert(s) {', '.join(chat)} say chat: true, but the tokenizer of {ref.name_or_path} has no chat "
            "template: drop chat: true, or build on an instruct model"
        )
    model = AutoModelForCausalLM.from_pretrained(ref.name_or_path, dtype=getattr(torch, dtype)).to(device)
    model.eval()
    check_targets(model, recipe, ref.architecture)

    spec = recipe.data
    manifest = existing or {}
    manifest.update(
        {
            "format_version": FORMAT_VERSION,
            "library": recipe.name,
            "recipe": recipe.path,
            "base": ref.to_json(),
            "data": {
                **spec.to_json(),
                "generator_version": GENERATOR_VERSION,
                "members": list(ds.family.members),
            },
        }
    )
    manifest.setdefault("experts", {})
    for name in list(manifest["experts"]):  # experts no longer in the recipe stay on disk, not in the manifest
        if name not in recipe.expert_names:
            del manifest["experts"][name]
    # until every expert is written the library is refused by load_library (a killed build never looks done)
    manifest[INCOMPLETE] = {"recipe": recipe.path, "experts": list(recipe.expert_names)}
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_manifest(out, manifest)
    except OSError as e:
        raise ConfigError(f"cannot write to --out {out}: {e.strerror}; pass a writable directory") from None

    for expert in recipe.experts:
        key = expert_key(ref, ds.hashes[expert.split], expert, spec.seed)
        entry = manifest["experts"].get(expert.name)
        if entry and entry.get("key") == key:
            try:
                verify_expert(out, expert.name, entry)
                log(f"expert {expert.name}: up to date, skipped")
                manifest[INCOMPLETE]["experts"].remove(expert.name)
                continue
            except LibraryError as e:
                log(f"expert {expert.name}: {e} -> retraining")
        started = time.time()
        own = ds.splits[expert.split]
        replay = replay_records(replay_count(expert.replay, len(own)), spec.seed, spec.family)
        peft_model, loss = train_expert(model, tok, own + replay, expert, seed=spec.seed, progress=progress)
        train_seconds = time.time() - started
        probes = {
            s: round(accuracy(peft_model, tok, ds.splits[s], chat=expert.chat), 4)
            for s in own_probe_splits(ds.family.members, expert.split)
        }
        test_em = round(accuracy(peft_model, tok, ds.splits["test"], chat=expert.chat), 4)
        rel = f"experts/{expert.name}"
        with atomic_dir(out / rel, None) as tmp:
            peft_model.save_pretrained(tmp)
            files = adapter_hashes(tmp)
        model = peft_model.unload()  # the base back, untouched: LoRA was never merged
        manifest["experts"][expert.name] = {
            "path": rel,
            "split": expert.split,
            "seed": spec.seed,
            "data_hash": ds.hashes[expert.split],
            "records": len(own),
            "replay_records": len(replay),
            **expert.hparams(),
            "files": files,
            "weights_hash": files["adapter_model.safetensors"],
            "final_loss": round(loss, 4),
            "own_probe": probes,
            "own_probe_mean": round(sum(probes.values()) / len(probes), 4),
            "test_exact_match": test_em,
            "train_seconds": round(train_seconds, 1),
            "device": device,
            "dtype": dtype,
            "key": key,
            # trained on test facts by design (the paper's A->C expert): flagged wherever it is reported
            "contaminated": expert.split in ds.family.contaminated,
        }
        manifest[INCOMPLETE]["experts"].remove(expert.name)
        write_manifest(out, manifest)
        log(
            f"expert {expert.name}: {len(own)} records"
            + (f" + {len(replay)} replay" if replay else "")
            + f", loss {loss:.3f}, "
            f"own probe {' '.join(f'{k}={v:.2f}' for k, v in probes.items())}, test {test_em:.2f}, "
            f"{train_seconds:.0f} s"
        )
    chat_experts = {e.name: e.chat for e in recipe.experts}
    # chat experts' controls are asked in the chat template since controls v2 (plain before): the
    # marker re-measures such libraries once, and leaves every plain library's record as it is
    chat_marker = [["chat-controls", 2]] if any(chat_experts.values()) else []
    controls_key = hashlib.sha256(
        json.dumps(sorted((n, e["key"]) for n, e in manifest["experts"].items()) + chat_marker).encode()
    ).hexdigest()
    if manifest.get("controls", {}).get("key") != controls_key:
        from lorareuse_plugin.library.controls import library_controls

        log("controls: decomposition over the members, union with chain of thought …")
        controls, samples = library_controls(
            model,
            tok,
            out,
            spec.family,
            spec.familiarity.value if spec.familiarity else None,
            ds.family.members,
            {n: e["path"] for n, e in manifest["experts"].items()},
            ds.splits["test"],
            chat_experts,
        )
        manifest["controls"] = {"key": controls_key, "controls": [c.to_json() for c in controls], "samples": samples}
    del manifest[INCOMPLETE]
    write_manifest(out, manifest)
    return manifest
