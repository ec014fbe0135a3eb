"""Command line: ``lorareuse …`` (our tools) and ``lorareuse-eval`` (lm-eval's CLI + our tasks).

Handlers import their heavy dependencies only when they run. Every user error ends in one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lorareuse_plugin.errors import LorareuseError

EXIT_USAGE = 2


def _offline_env() -> None:
    """The hub is unreachable by design: fail fast instead of waiting on network time-outs."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    # our own progress bars say what is happening; transformers' per-load bars and warnings are noise
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _cmd_data_export(args: argparse.Namespace) -> int:
    from lorareuse_plugin.data.build import make_spec
    from lorareuse_plugin.data.export import MANIFEST, export

    spec = make_spec(args.family, args.familiarity, args.seed, args.n_test, args.n_target, args.n_skill)
    info = export(spec, Path(args.out))
    out = Path(args.out).resolve()
    for name, s in info["splits"].items():
        digest = s["sha256"][:16]
        print(f"{s['role']:5}  {name:16} {s['records']:6d} records  sha256 {digest}  {out / s['file']}")
    print(f"wrote {len(info['splits'])} splits and {out / MANIFEST} (leakage check passed)")
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from lorareuse_plugin.data.build import build_dataset, make_spec

    ds = build_dataset(make_spec(args.family, args.familiarity, args.seed, args.n_test, args.n_target, args.n_skill))
    for name in ds.family.all_splits:
        print(f"{name:16} {len(ds.splits[name]):6d} records  sha256 {ds.hashes[name]}")
    print("leakage check passed")
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    import lorareuse_plugin
    from lorareuse_plugin.data.catalog import FORM_METRIC, group_specs, task_specs

    print("| task | family | familiarity | split | form | metric |")
    print("|---|---|---|---|---|---|")
    for s in task_specs():
        metric = ",".join(FORM_METRIC[s.form])
        print(f"| `{s.name}` | {s.family} | {s.familiarity or '-'} | {s.split} | {s.form} | {metric} |")
    print()
    print("| group | members |")
    print("|---|---|")
    for name, (members, _) in group_specs().items():
        print(f"| `{name}` | {', '.join(members)} |")
    print(f"\ntask folder: {lorareuse_plugin.TASKS_DIR}")
    return 0


def _cmd_base_build(args: argparse.Namespace) -> int:
    from lorareuse_plugin.base.build import build_base
    from lorareuse_plugin.base.sanity import format_report

    path, info = build_base(args.size, force=args.force, out=Path(args.out) if args.out else None)
    print(f"base model: {path}")
    print(
        f"  {info['parameters']:,} parameters, corpus {info['corpus']['documents']} documents / "
        f"{info['corpus']['tokens']:,} tokens, final loss {info['final_loss']}, "
        f"trained in {info['train_seconds']} s"
    )
    print(format_report(info["sanity"]))
    return 0


def _cmd_library_build(args: argparse.Namespace) -> int:
    from lorareuse_plugin.library.build import build_library
    from lorareuse_plugin.library.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    out = Path(args.out) if args.out else Path("libraries") / recipe.name
    manifest = build_library(recipe, out, base=args.base, device=args.device, dtype=args.dtype)
    print(f"library {recipe.name}: {out.resolve()}")
    _print_library(manifest)
    return 0


def _print_library(manifest: dict) -> None:
    print(f"  base {manifest['base']['name_or_path']} (config {manifest['base']['config_hash'][:12]})")
    print(f"  {'expert':10} {'split':8} {'records':>7} {'loss':>6} {'own probe':>9} {'test':>5}")
    for name, e in manifest["experts"].items():
        print(
            f"  {name:10} {e['split']:8} {e['records']:7d} {e['final_loss']:6.3f} "
            f"{e['own_probe_mean']:9.2f} {e['test_exact_match']:5.2f}"
        )


def _cmd_library_verify(args: argparse.Namespace) -> int:
    from lorareuse_plugin.library.manifest import load_library

    lib = load_library(args.library)
    print(f"library {lib.manifest['library']}: {len(lib.expert_names)} experts, every file matches its hash")
    _print_library(lib.manifest)
    return 0


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", required=True, help="twohop | math_ks | math_ss")
    p.add_argument("--familiarity", default=None, help="F | H | R (twohop), F | R (math_ks); omit for math_ss")
    p.add_argument("--seed", default="0", help="world seed (non-negative integer, default 0)")
    p.add_argument("--n-test", default=None, help="composed test questions (default 30)")
    p.add_argument("--n-target", default=None, help="composed questions for the target expert (default 30)")
    p.add_argument("--n-skill", default=None, help="problems per math skill expert (default 300)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lorareuse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tasks = sub.add_parser("tasks", help="list our lm-eval tasks and groups (Markdown)")
    tasks.set_defaults(handler=_cmd_tasks)

    base = sub.add_parser("base", help="the embedded default base model")
    base_sub = base.add_subparsers(dest="base_command", required=True, parser_class=_Parser)
    bb = base_sub.add_parser("build", help="pretrain the tiny base from scratch (or reuse the cached one)")
    bb.add_argument("--size", default="default", help="default (~2 min on 2 cores) | test (seconds)")
    bb.add_argument("--force", action="store_true", help="rebuild even if a cached build exists")
    bb.add_argument("--out", default=None, help="model dir (default: $LORAREUSE_CACHE/base/<size>-<hash>)")
    bb.set_defaults(handler=_cmd_base_build)

    lib = sub.add_parser("library", help="expert libraries: build from a recipe, verify")
    lib_sub = lib.add_subparsers(dest="library_command", required=True, parser_class=_Parser)
    lb = lib_sub.add_parser("build", help="train every expert of a recipe (resumable)")
    lb.add_argument("recipe", help="recipe YAML, e.g. adapters/twohop_f.yaml")
    lb.add_argument("--base", default=None, help="default | test | model dir | HF id (default: the recipe's)")
    lb.add_argument("--out", default=None, help="library dir (default: libraries/<recipe name>)")
    lb.add_argument("--device", default="cpu", help="cpu | cuda")
    lb.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    lb.set_defaults(handler=_cmd_library_build)
    lv = lib_sub.add_parser("verify", help="check every adapter file against manifest.json")
    lv.add_argument("library", help="library dir")
    lv.set_defaults(handler=_cmd_library_verify)

    data = sub.add_parser("data", help="generate, check and export datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    exp = data_sub.add_parser("export", help="write every split as JSONL plus splits.json with hashes")
    _add_spec_args(exp)
    exp.add_argument("--out", required=True, help="output directory (new, empty, or an earlier export)")
    exp.set_defaults(handler=_cmd_data_export)
    chk = data_sub.add_parser("check", help="generate, run the leakage check and print split hashes")
    _add_spec_args(chk)
    chk.set_defaults(handler=_cmd_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _offline_env()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except LorareuseError as e:
        print(f"lorareuse: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def eval_main(argv: Sequence[str] | None = None) -> None:
    """lm-eval's own CLI (every flag works) with our task folder prepended to ``--include_path``."""
    _offline_env()
    from lm_eval._cli import HarnessCLI  # private API: covered by a smoke test
    from lm_eval.utils import setup_logging

    import lorareuse_plugin

    setup_logging()
    cli = HarnessCLI()
    if argv is not None:
        sys.argv = ["lorareuse-eval", *argv]
    args = cli.parse_args()
    if hasattr(args, "include_path"):
        extra = [args.include_path] if isinstance(args.include_path, str) else list(args.include_path or [])
        args.include_path = [str(lorareuse_plugin.TASKS_DIR), *extra]
    try:
        cli.execute(args)
    except LorareuseError as e:
        print(f"lorareuse-eval: error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


if __name__ == "__main__":
    sys.exit(main())
