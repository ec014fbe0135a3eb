"""Bad input, table-driven: every row is one user mistake, and every mistake must end in

1. one readable line that names the problem and the fix (no traceback, no multi-line dump),
2. a typed ``LorareuseError`` from the API, exit status 2 from the CLI,
3. nothing written: the output path (and its parent, the library, the merged-adapter cache) is
   exactly as it was before, no stray temp dirs or files included.

The CLI rows run ``lorareuse`` as a real subprocess; libraries are copied before being corrupted.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import lorareuse_plugin
from lorareuse_plugin.errors import ConfigError, LibraryError, LorareuseError

from .conftest import TINY_RECIPE, tiny_task_metadata

# ---- helpers ---------------------------------------------------------------------------------------------------


def tree(path: Path) -> dict[str, str] | None:
    """Every file (sha256) and dir under ``path``, hidden ones included; None if it does not exist."""
    if not path.exists():
        return None
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


def rehash(lib: Path, expert: str) -> None:
    """Make the manifest agree with an expert's (edited) files, as a user 'fixing' a library by hand would."""
    from lorareuse_plugin.library.manifest import adapter_hashes

    manifest = json.loads((lib / "manifest.json").read_text())
    files = adapter_hashes(lib / "experts" / expert)
    manifest["experts"][expert]["files"] = files
    manifest["experts"][expert]["weights_hash"] = files["adapter_model.safetensors"]
    (lib / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(lib: Path, fn: Callable[[dict], object]) -> None:
    manifest = json.loads((lib / "manifest.json").read_text())
    fn(manifest)
    (lib / "manifest.json").write_text(json.dumps(manifest))


def edit_tensors(lib: Path, expert: str, fn: Callable[[dict], dict]) -> None:
    from safetensors.torch import load_file, save_file

    weights = lib / "experts" / expert / "adapter_model.safetensors"
    save_file(fn(load_file(str(weights))), str(weights))
    rehash(lib, expert)


def _nan(t: dict) -> dict:
    key = sorted(k for k in t if "lora_B" in k)[0]
    t[key] = t[key].clone()
    t[key][0, 0] = float("nan")
    return t


def _bad_shape(t: dict) -> dict:
    key = sorted(k for k in t if "lora_A" in k)[0]
    t[key] = t[key][:-1].clone()  # rank 3 A against rank 4 B
    return t


def _truncate(lib: Path) -> None:
    weights = lib / "experts" / "hop1" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    rehash(lib, "hop1")


def _flip_byte(lib: Path) -> None:
    weights = lib / "experts" / "hop1" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))


def _config_rank(lib: Path) -> None:
    cfg_file = lib / "experts" / "hop1" / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["r"] = 3
    cfg_file.write_text(json.dumps(cfg))
    rehash(lib, "hop1")


def _swap_in_foreign_adapter(lib: Path) -> None:
    """Replace hop1 by a LoRA trained on another base (hidden 32 instead of 64), manifest re-hashed."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=1)
    torch.manual_seed(0)
    other = LlamaForCausalLM(cfg)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    shutil.rmtree(lib / "experts" / "hop1")
    get_peft_model(other, lora).save_pretrained(lib / "experts" / "hop1")
    edit_manifest(lib, lambda m: m["experts"]["hop1"].update(targets=["q_proj", "v_proj"]))
    rehash(lib, "hop1")


def _incomplete(lib: Path) -> None:
    """What a `library build` killed after its first expert leaves behind."""

    def fn(m: dict) -> None:
        for e in ("target", "union", "oracle"):
            m["experts"].pop(e)
        m["incomplete"] = {"recipe": "tiny.yaml", "experts": ["target", "union", "oracle"]}

    edit_manifest(lib, fn)


def _recipe(fn: Callable[[dict], object]) -> Callable[[Path], str]:
    def write(tmp: Path) -> str:
        r = copy.deepcopy(TINY_RECIPE)
        fn(r)
        path = tmp / "recipe.yaml"
        path.write_text(yaml.safe_dump(r))
        return str(path)

    return write


def _recipe_text(text: str) -> Callable[[Path], str]:
    def write(tmp: Path) -> str:
        path = tmp / "recipe.yaml"
        path.write_text(text)
        return str(path)

    return write


def _set(path: list, value: object) -> Callable[[dict], None]:
    def fn(r: dict) -> None:
        d = r
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    return fn


def _file_at_out(out: Path) -> None:
    out.write_text("not a directory\n")


def _foreign_dir_at_out(out: Path) -> None:
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")


def _foreign_copy(name: str, **changes) -> Callable[[Path], None]:
    """A copy of hop1 at ``<lib>/<name>`` with its adapter_config.json edited: a foreign dir a user brings."""

    def corrupt(lib: Path) -> None:
        dst = lib / name
        shutil.copytree(lib / "experts" / "hop1", dst)
        cfg = json.loads((dst / "adapter_config.json").read_text())
        cfg.update(changes)
        (dst / "adapter_config.json").write_text(json.dumps(cfg))

    return corrupt


def _narrow_lora(lib: Path) -> None:
    """A plain-PEFT LoRA of a narrower Llama at ``<lib>/narrow`` (another base)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=1)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(LlamaForCausalLM(cfg), lora).save_pretrained(lib / "narrow")


# ---- the table -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A CLI row has ``argv`` (placeholders {lib} {out} {base} {recipe} {tmp}) and must exit 2; an API row has
    ``kwargs`` (placeholders {lib} {tmp} {other_base}) and must raise ``error``."""

    id: str
    problem: str  # substring of the message naming the problem
    fix: str  # substring of the message naming the fix
    argv: tuple[str, ...] = ()
    kwargs: dict = field(default_factory=dict)
    error: type = ConfigError
    corrupt: Callable[[Path], None] | None = None  # applied to a private copy of the tiny library
    recipe: Callable[[Path], str] | None = None
    pre_out: Callable[[Path], None] | None = None  # something already at the output path


MERGE = ("merge", "--library", "{lib}", "--experts", "hop1,hop2", "--out", "{out}")
VERIFY = ("library", "verify", "{lib}")
BUILD = ("library", "build", "{recipe}", "--base", "{base}", "--out", "{out}")
EXPORT = ("data", "export", "--family", "twohop", "--out", "{out}")
BOARD = ("leaderboard", "--library", "{lib}", "--out", "{out}")
tiny_recipe = _recipe(lambda r: None)

FOREIGN_MERGE = ("merge", "--adapters", "x:{lib}/foreign", "--out", "{out}")
IMPORT = ("library", "import", "--base", "{base}", "--out", "{out}")

IMPORT_BASE = ("base", "import", "--gguf", "{recipe}", "--out", "{out}")


def _gguf(**kw) -> Callable[[Path], str]:
    """A small GGUF file (``recipe`` placeholder: any input file a case needs)."""

    def make(tmp: Path) -> str:
        from .base.test_importer import write_gguf

        return str(write_gguf(tmp / "model.gguf", **kw))

    return make


def _not_gguf(tmp: Path) -> str:
    (tmp / "model.gguf").write_text("<html>404</html>")
    return str(tmp / "model.gguf")


CLI_CASES = [
    # -- the theory toy
    Case(
        "theory-trials-zero",
        "--trials 0: use 1 or more",
        "each trial is one random toy",
        ("theory", "--trials", "0", "--out", "{out}"),
    ),
    Case(
        "theory-negative-seed", "--seed -1", "use a non-negative integer", ("theory", "--seed", "-1", "--out", "{out}")
    ),
    # -- real bases: base import / base fetch
    Case(
        "base-hub-id-offline",
        "neither a local model dir nor a loadable hub id",
        "HF_HUB_OFFLINE is set: unset it",
        (*BUILD[:3], "--base", "Qwen/Qwen2.5-0.5B-Instruct", "--out", "{out}"),
        recipe=tiny_recipe,
    ),
    Case(
        "familiarity-limit",
        "--limit 0: probe at least 1 fact",
        "leave it out for all",
        ("familiarity", "--base", "{base}", "--out", "{out}", "--limit", "0"),
    ),
    Case("base-import-not-gguf", "not a GGUF file", "pass a .gguf file", IMPORT_BASE, recipe=_not_gguf),
    Case("base-import-truncated", "truncated or corrupt", "fetch it again", IMPORT_BASE, recipe=_gguf(cut=1000)),
    Case(
        "base-import-arch",
        "architecture nonesuch is not one transformers loads",
        "convert it to an HF model dir",
        IMPORT_BASE,
        recipe=_gguf(arch="nonesuch"),
    ),
    Case(
        "base-import-float8",
        "--dtype float8: not supported",
        "float32 or bfloat16",
        (*IMPORT_BASE, "--dtype", "float8"),
        recipe=_gguf(),
    ),
    Case(
        "base-fetch-unknown",
        "unknown model 'gpt5'",
        "fetchable are smollm2",
        ("base", "fetch", "gpt5", "--out", "{out}"),
    ),
    # -- bring your own adapters: merge --adapters, library import
    Case(
        "adapters-not-lora",
        "peft_type 'IA3' is not LORA",
        "pass a PEFT LoRA adapter directory",
        FOREIGN_MERGE,
        corrupt=_foreign_copy("foreign", peft_type="IA3"),
    ),
    Case(
        "adapters-pissa",
        "init_lora_weights='pissa_niter_4' rewrites the base weights",
        "init_lora_weights=true/gaussian",
        FOREIGN_MERGE,
        corrupt=_foreign_copy("foreign", init_lora_weights="pissa_niter_4"),
    ),
    Case(
        "adapters-malformed",
        "'hop1' is not NAME:PATH",
        "adapters=NAME:PATH+NAME:PATH",
        ("merge", "--adapters", "hop1", "--out", "{out}"),
    ),
    Case(
        "adapters-reserved-name",
        "'base' can't name an adapter",
        "rename it",
        ("merge", "--adapters", "base:{lib}/experts/hop1", "--out", "{out}"),
    ),
    Case(
        "merge-library-and-adapters",
        "pass --library DIR or --adapters",
        "one of the two",
        ("merge", "--library", "{lib}", "--adapters", "x:{lib}/experts/hop1", "--out", "{out}"),
    ),
    Case(
        "import-another-base",
        "was trained on another base",
        "pass the base it was trained on as --base",
        (*IMPORT, "n={lib}/narrow"),
        error=LibraryError,
        corrupt=_narrow_lora,
    ),
    Case("import-not-name-path", "is not NAME=PATH", "hop1=/loras/hop1", (*IMPORT, "{lib}/experts/hop1")),
    Case(
        "import-not-lora",
        "peft_type 'IA3' is not LORA",
        "pass a PEFT LoRA adapter directory",
        (*IMPORT, "x={lib}/foreign"),
        corrupt=_foreign_copy("foreign", peft_type="IA3"),
    ),
    # -- merge: methods, experts, parameters, weights
    Case("merge-unknown-method", "unknown method 'avrage'", "use one of", (*MERGE, "--method", "avrage")),
    Case("merge-unknown-expert", "hop9 not in library", "it has hop1, hop2", (*MERGE[:4], "hop1,hop9", *MERGE[5:])),
    Case("merge-repeated-expert", "repeats an expert", "name each expert once", (*MERGE[:4], "hop1,hop1", *MERGE[5:])),
    Case("merge-svd-rank-0", "rank=0 is invalid", "positive integer", (*MERGE, "--method", "svd", "--param", "rank=0")),
    Case(
        "merge-svd-rank-above-total",
        "rank=9 is invalid for hop1+hop2 (total rank 8)",
        "use 1..8",
        (*MERGE, "--method", "svd", "--param", "rank=9"),
    ),
    Case(
        "merge-ties-density-0", "density=0.0 is invalid", "(0, 1]", (*MERGE, "--method", "ties", "--param", "density=0")
    ),
    Case(
        "merge-ties-density-1.5",
        "density=1.5 is invalid",
        "(0, 1]",
        (*MERGE, "--method", "ties", "--param", "density=1.5"),
    ),
    Case("merge-dare-drop-1", "drop=1.0 is invalid", "[0, 1)", (*MERGE, "--method", "dare", "--param", "drop=1")),
    Case(
        "merge-dare-drop-negative",
        "drop=-0.1 is invalid",
        "[0, 1)",
        (*MERGE, "--method", "dare", "--param", "drop=-0.1"),
    ),
    Case(
        "merge-ensemble",
        "ensemble is an output-mixing method: it has no merged adapter",
        "averaging methods: delta_mean",
        (*MERGE, "--method", "ensemble"),
    ),
    Case(
        "merge-chain",
        "chain is a chaining method: it has no merged adapter to write",
        "averaging methods: delta_mean",
        (*MERGE, "--method", "chain"),
    ),
    Case(
        "merge-chain-three-experts",
        "chain asks two experts in turn, got 3",
        "experts=hop1+hop2",
        ("merge", "--library", "{lib}", "--experts", "hop1,hop2,target", "--method", "chain", "--out", "{out}"),
    ),
    Case(
        "merge-task-arithmetic-lambda-nan",
        "lambda=nan is not a finite number",
        "use e.g. lambda=1.0",
        (*MERGE, "--method", "task_arithmetic", "--param", "lambda=nan"),
    ),
    Case(
        "merge-task-arithmetic-lambda-word",
        "lambda='big' is not a valid float",
        "task_arithmetic",
        (*MERGE, "--method", "task_arithmetic", "--param", "lambda=big"),
    ),
    Case(
        "merge-task-arithmetic-weights",
        "scales every expert by the same lambda",
        "drop weights=",
        (*MERGE, "--method", "task_arithmetic", "--weights", "0.7+0.3"),
    ),
    Case("merge-weights-count", "1 weights for 2 experts", "one weight per expert", (*MERGE, "--weights", "0.5")),
    Case("merge-weights-negative", "include a negative weight", "weights >= 0", (*MERGE, "--weights=-1+2")),
    Case("merge-weights-sum-0", "sum to 0", "positive weight", (*MERGE, "--weights", "0+0")),
    Case("merge-weights-nan", "must be finite numbers", "weights=0.7+0.3", (*MERGE, "--weights", "nan+1")),
    Case("merge-weights-not-numbers", "must be numbers joined by '+'", "weights=0.7+0.3", (*MERGE, "--weights", "a+b")),
    Case(
        "merge-param-of-another-method",
        "unknown parameter(s) density",
        "allowed: rank",
        (*MERGE, "--method", "svd", "--param", "density=0.5"),
    ),
    Case("merge-param-malformed", "--param 'rank' must look like", "name=value", (*MERGE, "--param", "rank")),
    Case(
        "merge-routing-method", "seq_arrow is a routing method", "averaging methods", (*MERGE, "--method", "seq_arrow")
    ),
    Case(
        "merge-seq-arrow-top-k-3",
        "top_k=3 is invalid for 2 experts",
        "use 1..2",
        (*MERGE, "--method", "seq_arrow", "--param", "top_k=3"),
    ),
    Case("merge-base-with-experts", "method base uses no experts", "drop experts=", (*MERGE, "--method", "base")),
    Case(
        "merge-no-library",
        "manifest.json not found",
        "pass a library directory",
        (*MERGE[:2], "{tmp}/nolib", *MERGE[3:]),
    ),
    Case("merge-out-is-a-file", "is a file", "pass a directory path", MERGE, pre_out=_file_at_out),
    Case(
        "merge-out-foreign-dir",
        "is not empty and holds no lorareuse_merge.json",
        "pass a new or empty",
        MERGE,
        pre_out=_foreign_dir_at_out,
    ),
    # -- manifests and adapter dirs (a private copy of the library, corrupted)
    Case(
        "manifest-missing",
        "manifest.json not found",
        "pass a library directory",
        VERIFY,
        corrupt=lambda lib: (lib / "manifest.json").unlink(),
    ),
    Case(
        "manifest-not-json",
        "manifest.json is not valid JSON",
        "rebuild the library",
        MERGE,
        corrupt=lambda lib: (lib / "manifest.json").write_text('{"format_version": 1,'),
    ),
    Case(
        "manifest-malformed",
        "is malformed (expert hop1 lacks files)",
        "rebuild the library",
        VERIFY,
        corrupt=lambda lib: edit_manifest(lib, lambda m: m["experts"]["hop1"].pop("files")),
    ),
    Case(
        "manifest-path-outside",
        "outside the library",
        "rebuild the library",
        MERGE,
        corrupt=lambda lib: edit_manifest(lib, lambda m: m["experts"]["hop2"].update(path="../../etc")),
    ),
    Case(
        "manifest-hash-mismatch",
        "does not match its manifest hash",
        "rebuild with `lorareuse library build`",
        MERGE,
        corrupt=_flip_byte,
    ),
    Case("library-incomplete", "is incomplete", "finish it with `lorareuse library build", VERIFY, corrupt=_incomplete),
    Case(
        "adapter-config-missing",
        "adapter_config.json is missing",
        "rebuild the expert",
        MERGE,
        corrupt=lambda lib: (lib / "experts" / "hop1" / "adapter_config.json").unlink(),
    ),
    Case(
        "adapter-dir-missing",
        "experts/hop2 is missing",
        "rebuild with",
        MERGE,
        corrupt=lambda lib: shutil.rmtree(lib / "experts" / "hop2"),
    ),
    Case(
        "adapter-truncated-safetensors",
        "adapter_model.safetensors is unreadable",
        "rebuild the expert",
        MERGE,
        corrupt=_truncate,
    ),
    Case(
        "adapter-nan-weights",
        "holds NaN/inf weights",
        "retrain the expert",
        MERGE,
        corrupt=lambda lib: edit_tensors(lib, "hop1", _nan),
    ),
    Case(
        "adapter-wrong-tensor-shapes",
        "inconsistent shapes",
        "rebuild the expert",
        MERGE,
        corrupt=lambda lib: edit_tensors(lib, "hop1", _bad_shape),
    ),
    Case(
        "adapter-rank-vs-config", "has rank 4 but the config says 3", "rebuild the expert", MERGE, corrupt=_config_rank
    ),
    Case(
        "adapter-for-another-base",
        "was trained on another base",
        "rebuild the expert on this base",
        ("merge", "--library", "{lib}", "--experts", "hop1", "--method", "single:hop1", "--out", "{out}"),
        corrupt=_swap_in_foreign_adapter,
    ),
    # -- library recipes (YAML)
    Case(
        "recipe-unknown-expert-key",
        "expert hop1: unknown key(s) rnk",
        "allowed: alpha",
        BUILD,
        recipe=_recipe(_set(["experts", "hop1", "rnk"], 4)),
    ),
    Case(
        "recipe-unknown-top-key",
        "unknown key(s) expert",
        "allowed: base, data",
        BUILD,
        recipe=_recipe(_set(["expert"], {"hop1": {}})),
    ),
    Case(
        "recipe-unknown-defaults-key",
        "defaults: unknown key(s) epoch",
        "allowed: alpha",
        BUILD,
        recipe=_recipe(_set(["defaults", "epoch"], 3)),
    ),
    Case(
        "recipe-unknown-data-key",
        "unknown data key(s) n_tests",
        "allowed: family",
        BUILD,
        recipe=_recipe(_set(["data", "n_tests"], 3)),
    ),
    Case(
        "recipe-rank-0",
        "expert hop2: rank=0 is invalid",
        "it must be a positive int",
        BUILD,
        recipe=_recipe(_set(["experts", "hop2", "rank"], 0)),
    ),
    Case(
        "recipe-rank-not-int",
        "rank='eight' is invalid",
        "it must be a positive int",
        BUILD,
        recipe=_recipe(_set(["experts", "hop2", "rank"], "eight")),
    ),
    Case(
        "recipe-lr-negative",
        "lr=-0.1 is invalid",
        "it must be a positive float",
        BUILD,
        recipe=_recipe(_set(["defaults", "lr"], -0.1)),
    ),
    Case(
        "recipe-missing-data",
        "'data' must give at least family",
        "familiarity, seed, sizes",
        BUILD,
        recipe=_recipe(lambda r: r.pop("data")),
    ),
    Case(
        "recipe-missing-experts",
        "'experts' must map expert names",
        "e.g. hop1: {}",
        BUILD,
        recipe=_recipe(lambda r: r.pop("experts")),
    ),
    Case(
        "recipe-bad-split-name",
        "split 'hop3' does not exist",
        "training splits are hop1, hop2",
        BUILD,
        recipe=_recipe(_set(["experts", "hop1", "split"], "hop3")),
    ),
    Case(
        "recipe-eval-split",
        "split 'test' does not exist",
        "training splits are",
        BUILD,
        recipe=_recipe(_set(["experts", "hop1", "split"], "test")),
    ),
    Case(
        "recipe-settings-not-mapping",
        "expert hop1: settings must be a mapping",
        "(or {})",
        BUILD,
        recipe=_recipe(_set(["experts", "hop1"], [4, 8])),
    ),
    Case(
        "recipe-forbidden-target",
        "targets lm_head are not allowed",
        "use attention and MLP projections",
        BUILD,
        recipe=_recipe(_set(["experts", "hop1", "targets"], ["q_proj", "lm_head"])),
    ),
    Case(
        "recipe-bad-expert-name",
        "expert name 'hop-1' must be alphanumeric",
        "underscores allowed",
        BUILD,
        recipe=_recipe(_set(["experts", "hop-1"], {"split": "hop1"})),
    ),
    Case(
        "recipe-unknown-family",
        "data: unknown family 'threehop'",
        "use one of twohop",
        BUILD,
        recipe=_recipe(_set(["data", "family"], "threehop")),
    ),
    Case(
        "recipe-bad-familiarity",
        "data: unknown familiarity 'Z'",
        "use one of F, H, R",
        BUILD,
        recipe=_recipe(_set(["data", "familiarity"], "Z")),
    ),
    Case(
        "recipe-negative-replay",
        "replay=-0.5 is invalid",
        "a number from 0 to 4",
        BUILD,
        recipe=_recipe(_set(["experts", "hop1"], {"replay": -0.5})),
    ),
    Case(
        "recipe-chat-not-bool",
        "chat='yes' is invalid",
        "write chat: true",
        BUILD,
        recipe=_recipe(_set(["experts", "hop1"], {"chat": "yes"})),
    ),
    Case(
        "recipe-all-linear-in-a-list",
        "write targets: all-linear on its own",
        "not inside a list",
        BUILD,
        recipe=_recipe(_set(["experts", "hop1"], {"targets": ["q_proj", "all-linear"]})),
    ),
    Case(
        "demo-real-base-with-quick",
        "--base smollm2 runs its own demo recipes",
        "drop --quick",
        ("demo", "--base", "smollm2", "--quick", "--out", "{out}"),
    ),
    Case(
        "recipe-bad-size",
        "data: n_test=0 is invalid",
        "integer >= 1",
        BUILD,
        recipe=_recipe(_set(["data", "n_test"], 0)),
    ),
    Case(
        "recipe-ac-n-test-beyond-real-people",
        "twohop R has 264 real people: n_test + n_target = 310 is too many",
        "sum to at most 264",
        BUILD,
        recipe=_recipe(
            lambda r: (
                r["data"].update(familiarity="R", n_test=300, n_target=10),
                r["experts"].update(ac={}),
            )
        ),
    ),
    Case(
        "recipe-math-ks-r-beyond-real-objects",
        "math_ks R has 32 real objects",
        "n_test + n_target must be at most 96",
        BUILD,
        recipe=_recipe(lambda r: r["data"].update(family="math_ks", familiarity="R", n_test=100, n_target=30)),
    ),
    Case(
        "export-n-test-beyond-real-people",
        "twohop R has 264 real people",
        "lower them",
        (*EXPORT, "--familiarity", "R", "--n-test", "400"),
    ),
    Case(
        "recipe-not-yaml", "is not valid YAML (line", "recipe", BUILD, recipe=_recipe_text("name: x\nexperts: [hop1,\n")
    ),
    Case(
        "recipe-not-a-mapping",
        "expected a YAML mapping",
        "keys name, base, data, experts",
        BUILD,
        recipe=_recipe_text("- hop1\n- hop2\n"),
    ),
    Case("recipe-missing-file", "not found", "pass a YAML file", BUILD, recipe=lambda tmp: str(tmp / "nope.yaml")),
    # -- library build: options and --out
    Case(
        "build-bad-device",
        "--device 'tpu' is invalid",
        "use cpu, cuda",
        (*BUILD, "--device", "tpu"),
        recipe=tiny_recipe,
    ),
    Case(
        "build-bad-dtype",
        "--dtype 'float64' is invalid",
        "use one of float32",
        (*BUILD, "--dtype", "float64"),
        recipe=tiny_recipe,
    ),
    Case(
        "build-base-not-a-model",
        "has no config.json",
        "pass an HF model directory",
        ("library", "build", "{recipe}", "--base", "{tmp}", "--out", "{out}"),
        recipe=tiny_recipe,
    ),
    Case("build-out-is-a-file", "is a file", "pass a directory", BUILD, recipe=tiny_recipe, pre_out=_file_at_out),
    Case(
        "build-out-foreign-dir",
        "is not empty and holds no manifest.json",
        "pass a new or empty directory",
        BUILD,
        recipe=tiny_recipe,
        pre_out=_foreign_dir_at_out,
    ),
    # -- data export
    Case("export-bad-familiarity", "unknown familiarity 'Q'", "use one of F, H, R", (*EXPORT, "--familiarity", "Q")),
    Case(
        "export-bad-seed", "seed='abc' is not an integer", "pass e.g.", (*EXPORT, "--familiarity", "F", "--seed", "abc")
    ),
    Case(
        "export-negative-size",
        "n_test=-3 is invalid",
        "integer >= 1",
        (*EXPORT, "--familiarity", "F", "--n-test", "-3"),
    ),
    Case(
        "export-known-missing",
        "known facts: ",
        "lorareuse familiarity --base BASE",
        (*EXPORT, "--familiarity", "R", "--known", "{tmp}/nope.json"),
    ),
    Case(
        "export-known-not-json",
        "is not JSON",
        "lorareuse familiarity --base BASE",
        (*EXPORT, "--familiarity", "R", "--known", "{recipe}"),
        recipe=_recipe_text("{not json"),
    ),
    Case(
        "export-known-not-a-report",
        "is not a familiarity report",
        "lorareuse familiarity --base BASE",
        (*EXPORT, "--familiarity", "R", "--known", "{recipe}"),
        recipe=_recipe_text('{"facts": [{"relation": "capital"}]}'),
    ),
    Case(
        "export-known-on-fictional-world",
        "twohop F has none to choose",
        "leave out known",
        (*EXPORT, "--familiarity", "F", "--known", "{recipe}"),
        recipe=_recipe_text(
            json.dumps({"base": {}, "facts": [{"relation": "capital", "subject": "France", "known": True}]})
        ),
    ),
    Case(
        "export-known-too-few-for-r",
        "twohop R has 1 real person whose birth country and its capital",
        "lower them so they sum to at most 1",
        (*EXPORT, "--familiarity", "R", "--known", "{recipe}"),
        recipe=_recipe_text(
            json.dumps(
                {
                    "base": {"name_or_path": "/m/smol"},
                    "facts": [
                        {"relation": "birth_country", "subject": "Albert Einstein", "known": True},
                        {"relation": "capital", "subject": "Germany", "known": True},
                        {"relation": "capital", "subject": "France", "known": True},
                    ],
                }
            )
        ),
    ),
    Case(
        "export-out-foreign-dir",
        "holds no splits.json",
        "pass a new or empty directory",
        (*EXPORT, "--familiarity", "F"),
        pre_out=_foreign_dir_at_out,
    ),
    # -- leaderboard statistics: refused before any run starts or any file is written
    Case("board-duplicate-seed", "repeats a seed", "list each seed once", (*BOARD, "--seeds", "0,1,0")),
    Case("board-negative-seed", "has a negative seed", "world seeds are >= 0", (*BOARD, "--seeds", "0,-1")),
    Case("board-seed-not-int", "is not a comma-separated list of integers", "e.g. 0,1,2", (*BOARD, "--seeds", "0,x")),
    Case(
        "board-threshold",
        "--claims-threshold 1.5 is outside [0, 1]",
        "such as 0.05",
        (*BOARD, "--claims-threshold", "1.5"),
    ),
    Case("board-resamples", "--resamples 50 is too few", "at least 100", (*BOARD, "--resamples", "50")),
    # -- leaderboard on adapters and tasks that are not ours
    Case(
        "board-include-no-tasks",
        "--include_path needs --tasks",
        "naming the tasks",
        (*BOARD, "--include_path", "{tmp}"),
    ),
    Case(
        "board-routes-unknown-expert",
        "--routes names expert(s) nope",
        "it has hop1",
        (*BOARD, "--tasks", "lorareuse_hop1_f", "--routes", "lorareuse_*:nope"),
    ),
    Case(
        "board-task-typo",
        "unknown task(s) lorareuse_hop1_ff",
        "did you mean lorareuse_hop1_f?",
        (*BOARD, "--tasks", "lorareuse_hop1_ff"),
    ),
    Case(
        "board-foreign-no-tasks",
        "holds foreign adapters",
        "pass --tasks",
        ("leaderboard", "--adapters", "x:{lib}/experts/hop1", "--out", "{out}"),
    ),
]


def _fill(args, ctx: dict[str, str]):
    if isinstance(args, str):
        return args.format(**ctx)
    return [_fill(a, ctx) for a in args]


@pytest.fixture
def world(tiny_library: Path, test_base: Path, lorareuse_cache: Path, tmp_path: Path):
    """Placeholders of one case, and the paths whose contents must not change."""

    def make(case: Case) -> tuple[dict[str, str], Path, list[Path]]:
        lib = tiny_library
        if case.corrupt is not None:
            lib = tmp_path / "lib"
            shutil.copytree(tiny_library, lib)
            case.corrupt(lib)
        work = tmp_path / "work"  # the output's parent: nothing else lives here
        work.mkdir()
        out = work / "out"
        if case.pre_out is not None:
            case.pre_out(out)
        ctx = {"lib": str(lib), "out": str(out), "base": str(test_base), "tmp": str(tmp_path)}
        if case.recipe is not None:
            ctx["recipe"] = case.recipe(tmp_path)
        return ctx, out, [work, lib, lorareuse_cache / "merged"]

    return make


def _one_line(message: str, case: Case) -> None:
    assert "\n" not in message.strip(), message
    assert case.problem in message, f"problem not named: {message}"
    assert case.fix in message, f"fix not named: {message}"


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_bad_input(case: Case, world) -> None:
    ctx, out, watched = world(case)
    before = {p: tree(p) for p in watched}
    proc = subprocess.run(
        [sys.executable, "-m", "lorareuse_plugin.cli", *_fill(case.argv, ctx)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        timeout=300,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("lorareuse: error: "), proc.stderr
    _one_line(lines[-1], case)
    # nothing written: the output's parent, the library and the merge cache are exactly as before
    for p in watched:
        assert tree(p) == before[p], f"{p} changed"
    if case.pre_out is None:
        assert not out.exists()


# ---- model_args of lorareuse-hf, constructed directly ----------------------------------------------------------


@pytest.fixture(scope="module")
def other_base(tmp_path_factory: pytest.TempPathFactory, test_base: Path) -> Path:
    """A different base: the test base's architecture with one layer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    out = tmp_path_factory.mktemp("other_base")
    cfg = LlamaConfig.from_pretrained(test_base)
    cfg.num_hidden_layers = 1
    AutoModelForCausalLM.from_config(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(test_base).save_pretrained(out)
    return out


HF_CASES = [
    Case("hf-unknown-method", "unknown method 'avrage'", "use one of", kwargs={"method": "avrage"}),
    Case(
        "hf-check-adapters-not-bool",
        "check_adapters='maybe' is not a boolean",
        "check_adapters=false",
        kwargs={"check_adapters": "maybe"},
    ),
    Case(
        "hf-param-of-another-method",
        "method delta_mean has no parameter top_k",
        "its parameters: none",
        kwargs={"method": "delta_mean", "top_k": "2"},
    ),
    Case("hf-no-library", "needs library=<dir>", "lorareuse library build", kwargs={"library": None}),
    Case(
        "hf-no-method",
        "method= is required",
        "one of base, delta_mean",
        kwargs={"method": None},
    ),
    Case(
        "hf-library-not-found",
        "manifest.json not found",
        "pass a library directory",
        kwargs={"library": "{tmp}/nolib"},
        error=LibraryError,
    ),
    Case(
        "hf-wrong-base",
        "the library was built for base",
        "pass that base as pretrained=",
        kwargs={"pretrained": "{other_base}"},
    ),
    Case(
        "hf-pretrained-not-loadable",
        "pretrained={tmp}/nobase can't be loaded",
        "leave pretrained= out",
        kwargs={"pretrained": "{tmp}/nobase"},
    ),
    Case("hf-weights-count", "3 weights for 2 experts", "one weight per expert", kwargs={"weights": "1+1+1"}),
    Case("hf-weights-negative", "include a negative weight", "weights >= 0", kwargs={"weights": "1.5+-0.5"}),
    Case("hf-weights-sum-0", "sum to 0", "positive weight", kwargs={"weights": "0+0"}),
    Case(
        "hf-weights-for-routing",
        "weights apply to averaging methods and ensemble only",
        "drop weights=",
        kwargs={"method": "seq_arrow", "weights": "0.5+0.5"},
    ),
    Case("hf-unknown-expert", "hop9 not in library", "it has hop1", kwargs={"experts": "hop1+hop9"}),
    Case(
        "hf-single-without-expert",
        "method single needs one expert",
        "method=single:<expert>",
        kwargs={"method": "single"},
    ),
    Case(
        "hf-base-with-experts",
        "method base uses no experts",
        "drop experts=",
        kwargs={"method": "base", "experts": "hop1"},
    ),
    Case(
        "hf-seq-arrow-top-k-0",
        "top_k=0 is invalid for 2 experts",
        "use 1..2",
        kwargs={"method": "seq_arrow", "top_k": "0"},
    ),
    Case("hf-arrow-top-k-3", "top_k=3 is invalid for 2 experts", "use 1..2", kwargs={"method": "arrow", "top_k": 3}),
    Case(
        "hf-seq-arrow-temperature-0",
        "temperature=0.0 must be > 0",
        "> 0",
        kwargs={"method": "seq_arrow", "temperature": "0"},
    ),
    Case(
        "hf-arrow-temperature-negative",
        "temperature=-1.0 must be > 0",
        "> 0",
        kwargs={"method": "arrow", "temperature": -1},
    ),
    Case(
        "hf-svd-rank-above-total", "rank=16 is invalid for hop1+hop2", "use 1..8", kwargs={"method": "svd", "rank": 16}
    ),
    Case(
        "hf-oracle-route-unknown-expert",
        "routes name expert(s) target",
        "add them to experts=",
        kwargs={"method": "oracle", "routes": "lorareuse_twohop_f:target"},
    ),
    Case(
        "hf-peft-with-a-spec",
        "peft= cannot be combined with method=delta_mean",
        "method=single:<expert>",
        kwargs={"method": "delta_mean", "peft": "{tmp}/some_adapter"},
    ),
    Case(
        "hf-ensemble-expert-twice",
        "experts list hop1+hop1 repeats an expert",
        "name each expert once",
        kwargs={"method": "ensemble", "experts": "hop1+hop1"},
    ),
    Case(
        "hf-rescore-without-rescorer",
        "rescore needs a built rescorer",
        "run `lorareuse rescorer build` first",
        kwargs={"method": "rescore"},
    ),
    Case(
        "hf-rescore-rescorer-dir-empty",
        "rescore: {tmp} holds no built rescorer",
        "run `lorareuse rescorer build --out ",
        kwargs={"method": "rescore", "rescorer": "{tmp}"},
    ),
    Case(
        "hf-rescore-unknown-score",
        "score='bleu' is unknown",
        "use one of auto, pll, nsp, head, rule",
        kwargs={"method": "rescore", "score": "bleu"},
    ),
    Case(
        "hf-oracle-route-default",
        "route_default='nope' is not one of refuse, base",
        "refuse, base",
        kwargs={"method": "oracle", "route_default": "nope"},
    ),
    Case(
        "hf-oracle-route-malformed",
        "routes entry 'mmlu_*' must look like TASK_GLOB:expert",
        "e.g. mmlu_*:hop1",
        kwargs={"method": "oracle", "routes": "mmlu_*"},
    ),
    Case(
        "hf-adapter-for-another-base",
        "was trained on another base",
        "rebuild the expert on this base",
        kwargs={"method": "oracle"},
        error=LibraryError,
        corrupt=_swap_in_foreign_adapter,
    ),
    Case(
        "hf-model-arg-typo",
        "unknown model_args key 'metod'",
        "did you mean method=?",
        kwargs={"metod": "svd"},
    ),
    Case(
        "hf-method-param-typo",
        "unknown model_args key 'top-k'",
        "did you mean top_k=?",
        kwargs={"method": "seq_arrow", "top-k": "1"},
    ),
    Case(
        "hf-corrupt-library",
        "does not match its manifest hash",
        "rebuild with",
        kwargs={"method": "seq_arrow"},
        error=LibraryError,
        corrupt=_flip_byte,
    ),
]


@pytest.mark.parametrize("case", HF_CASES, ids=[c.id for c in HF_CASES])
def test_model_args_bad_input(case: Case, tiny_library, other_base, lorareuse_cache, tmp_path) -> None:
    from lorareuse_plugin.models.hf import LorareuseHFLM

    lib = tiny_library
    if case.corrupt is not None:
        lib = tmp_path / "lib"
        shutil.copytree(tiny_library, lib)
        case.corrupt(lib)
    ctx = {"tmp": str(tmp_path), "other_base": str(other_base)}
    kwargs = {"library": str(lib), "experts": "hop1+hop2", "method": "delta_mean", **case.kwargs}
    kwargs = {k: _fill(v, ctx) if isinstance(v, str) else v for k, v in kwargs.items() if v is not None}
    problem = _fill(case.problem, ctx)
    watched = [lib, lorareuse_cache / "merged"]
    before = {p: tree(p) for p in watched}
    with pytest.raises(case.error) as err:
        LorareuseHFLM(device="cpu", dtype="float32", **kwargs)
    assert isinstance(err.value, LorareuseError)
    _one_line(str(err.value), Case(case.id, problem, case.fix))
    for p in watched:
        assert tree(p) == before[p], f"{p} changed"


def test_chain_on_a_foreign_task_is_refused_in_one_line(tiny_library) -> None:
    """chain decomposes our composed questions only: lm-eval's request of another task is refused."""
    from lm_eval.api.instance import Instance

    from lorareuse_plugin.models.hf import LorareuseHFLM

    lm = LorareuseHFLM(device="cpu", dtype="float32", library=str(tiny_library), method="chain", experts="hop1+hop2")
    args = ("Q: What is 2 + 2?\nA:", {"until": ["\n"], "max_gen_toks": 4})
    with pytest.raises(ConfigError) as err:
        lm.generate_until([Instance("generate_until", {}, args, idx=0, metadata=("arith", 0, 1))])
    _one_line(str(err.value), Case("chain-foreign-task", "arith asks 'What is 2 + 2?'", "drop the task or use another"))


# ---- task metadata ---------------------------------------------------------------------------------------------


def _docs(metadata: dict, task: str = "lorareuse_hop1_f") -> list:
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False, metadata=metadata)
    return list(tm.load([task])["tasks"][task].test_docs())


TASK_CASES = [
    Case(
        "task-misspelt-key",
        "unknown task metadata key(s) lorareuse_sed",
        "known keys are lorareuse_family",
        kwargs={"lorareuse_sed": 1},
    ),
    Case(
        "task-misspelt-size-key",
        "unknown task metadata key(s) lorareuse_ntest",
        "lorareuse_n_test",
        kwargs={"lorareuse_ntest": 4},
    ),
    Case("task-bad-seed", "seed=-1 is invalid", "integer >= 0", kwargs={"lorareuse_seed": -1}),
    Case(
        "task-library-world-mismatch",
        "trained on another twohop_f world",
        "add --metadata",
        kwargs={"library": "{lib}", "lorareuse_n_test": 30},
    ),
    Case(
        "task-ctx-library-of-another-world",
        "trained on another twohop_f world (seed=0)",
        "add --metadata '{\"lorareuse_seed\": 0}'",
        kwargs={"library": "{lib}", "lorareuse_seed": 3, "task": "lorareuse_twohop_f_ctx"},
    ),
    Case(
        "task-library-manifest-corrupt",
        "manifest.json is not valid JSON",
        "rebuild the library",
        kwargs={"library": "{lib}"},
        error=LibraryError,
        corrupt=lambda lib: (lib / "manifest.json").write_text("{"),
    ),
]


@pytest.mark.parametrize("case", TASK_CASES, ids=[c.id for c in TASK_CASES])
def test_task_metadata_bad_input(case: Case, tiny_library, tmp_path) -> None:
    lib = tiny_library
    if case.corrupt is not None:
        lib = tmp_path / "lib"
        shutil.copytree(tiny_library, lib)
        case.corrupt(lib)
    metadata = {**tiny_task_metadata(), **case.kwargs}
    metadata = {k: _fill(v, {"lib": str(lib)}) if isinstance(v, str) else v for k, v in metadata.items()}
    task = metadata.pop("task", "lorareuse_hop1_f")
    with pytest.raises(case.error) as err:
        _docs(metadata, task)
    assert isinstance(err.value, LorareuseError)
    _one_line(str(err.value), case)


def test_the_table_is_big_and_ids_are_unique() -> None:
    ids = [c.id for c in CLI_CASES + HF_CASES + TASK_CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 28
