import json

import pytest

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.report.ladder import ladder
from lorareuse_plugin.report.leaderboard import run_leaderboard


def test_leaderboard_runs_end_to_end_and_writes_all_four_files(tiny_library, tmp_path):
    out = tmp_path / "board"
    logs: list[str] = []
    summary = run_leaderboard(
        [tiny_library],
        out,
        methods=("delta_mean", "seq_arrow"),
        tasks=["lorareuse_twohop_f", "lorareuse_hop1_f", "lorareuse_twohop_f_mc"],
        limit=2,
        batch_size=8,
        log=logs.append,
    )
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.png", "leaderboard.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    entries = {c["entry"] for c in summary["cells"]}
    assert {
        "base",
        "expert:hop1",
        "expert:hop2",
        "expert:target",
        "delta_mean[hop1+hop2]",
        "seq_arrow[hop1+hop2+target]",
        "expert:union",
        "expert:oracle",
        "oracle-routing[hop1+hop2+target]",
    } <= entries
    md = (out / "leaderboard.md").read_text()
    assert "| delta_mean[hop1+hop2] |" in md and "Composition gap" in md
    csv_lines = (out / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[0].startswith("library,family,familiarity,group,entry")
    assert len(csv_lines) == 1 + len(summary["cells"])
    run = out / "runs" / "tiny_twohop_f" / "seed0" / "seq_arrow_hop1-hop2"
    results = json.loads((run / "results.json").read_text())
    assert results["config"]["lorareuse"]["spec"]["method"] == "seq_arrow"
    sample = json.loads((run / "samples_lorareuse_hop1_f.jsonl").read_text().splitlines()[0])
    assert sample["lorareuse_expert"] in ("hop1", "hop2")
    # router accuracy: seq_arrow's route per document against the oracle's (hop1_f -> hop1; the composed
    # tasks -> target, only where target was a choice), read back from those samples
    routed = {(a["entry"], a["task"]): a for a in summary["router_accuracy"]}
    hop1 = routed[("seq_arrow[hop1+hop2]", "lorareuse_hop1_f")]
    lines = [json.loads(x) for x in (run / "samples_lorareuse_hop1_f.jsonl").read_text().splitlines()]
    logged = {x["doc_id"]: x["lorareuse_expert"] for x in lines}  # one line per document and filter
    assert hop1["oracle_route"] == "hop1" and hop1["n"] == 2
    assert hop1["accuracy"] == list(logged.values()).count("hop1") / 2
    assert ("seq_arrow[hop1+hop2]", "lorareuse_twohop_f") not in routed  # no right expert among hop1+hop2
    assert routed[("seq_arrow[hop1+hop2+target]", "lorareuse_twohop_f")]["oracle_route"] == "target"
    assert "Router accuracy (route chosen = oracle route)" in md
    # a second run reuses every finished lm-eval run
    again: list[str] = []
    run_leaderboard(
        [tiny_library],
        out,
        methods=("delta_mean", "seq_arrow"),
        tasks=["lorareuse_twohop_f", "lorareuse_hop1_f", "lorareuse_twohop_f_mc"],
        limit=2,
        batch_size=8,
        log=again.append,
    )
    assert all(line.endswith(": cached") for line in again)


def test_ladder_has_the_whole_baseline_ladder(tiny_library):
    from lorareuse_plugin.library.manifest import load_library

    labels = [e.label for e in ladder(load_library(tiny_library).manifest)]
    assert labels[:4] == ["base", "expert:hop1", "expert:hop2", "expert:target"]
    for m in ("delta_mean", "factor_mean", "svd", "ties", "dare", "arrow", "seq_arrow"):
        assert f"{m}[hop1+hop2]" in labels and f"{m}[hop1+hop2+target]" in labels
    assert labels[-3:] == ["expert:union", "expert:oracle", "oracle-routing[hop1+hop2+target]"]
    # the simple baselines on the 2-expert library; chain needs exactly two members
    for m in ("task_arithmetic", "random_route", "ensemble", "chain", "rescore"):
        assert f"{m}[hop1+hop2]" in labels and f"{m}[hop1+hop2+target]" not in labels
    assert [e.label for e in ladder(load_library(tiny_library).manifest, ("chain", "ensemble"))].count(
        "chain[hop1+hop2+target]"
    ) == 0


def test_the_ladder_leaves_out_rescore_in_one_line_when_no_rescorer_is_built(tiny_library, tmp_path, monkeypatch):
    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.report.leaderboard import library_ladder
    from lorareuse_plugin.report.taskpool import TaskPool
    from lorareuse_plugin.rescore.model import default_rescorer

    monkeypatch.setenv("LORAREUSE_CACHE", str(tmp_path))  # an empty cache: no default build
    assert default_rescorer() is None
    said = []
    entries = library_ladder(load_library(tiny_library), TaskPool(("lorareuse_twohop_f",), ()), None, None, said.append)
    assert "rescore" not in {e.method for e in entries} and "chain" in {e.method for e in entries}
    assert said == ["tiny_twohop_f: no rescore row: no rescorer is built (`lorareuse rescorer build`, ~2 min)"]


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"backend": "tgi"}, "--backend 'tgi' is not available"),
        ({"methods": ("avg",)}, "unknown method 'avg'"),
        ({"tasks": ["lorareuse_nope"]}, "unknown task"),
    ],
)
def test_bad_leaderboard_input(tiny_library, tmp_path, kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        run_leaderboard([tiny_library], tmp_path / "b", **kwargs)
    assert not (tmp_path / "b").exists()  # refused before anything is written


def test_seeds_build_each_seed_its_own_library_and_aggregate(tiny_library, tmp_path):
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(tiny_library, lib)  # the seed-1 library is built beside this copy
    summary = run_leaderboard(
        [lib],
        tmp_path / "board",
        seeds=[0, 1],
        methods=("delta_mean",),
        tasks=["lorareuse_hop1_f"],
        limit=2,
        batch_size=8,
        log=lambda m: None,
    )
    seed1 = json.loads((tmp_path / "lib-seed1" / "manifest.json").read_text())
    assert seed1["data"]["seed"] == 1 and seed1["library"] == "tiny_twohop_f-seed1"
    assert {r["seed"] for r in summary["rows"]} == {0, 1}
    assert all(c["seeds"] == 2 and len(c["values"]) == 2 for c in summary["cells"])
    assert "(2 seeds; mean [95% interval])" in (tmp_path / "board" / "leaderboard.md").read_text()


def test_vllm_backend_gives_the_hf_table(tiny_library, tmp_path):
    """Same ladder on both backends: same numbers in every cell (greedy exact match and MC
    accuracy); per-token arrow is served by hf on --backend vllm and its rows say so."""
    pytest.importorskip("vllm")
    kwargs = {
        "methods": ("delta_mean", "seq_arrow", "arrow"),
        "tasks": ["lorareuse_twohop_f", "lorareuse_hop1_f", "lorareuse_hop2_f", "lorareuse_twohop_f_mc"],
        "batch_size": 8,
        "log": lambda m: None,
    }
    hf = run_leaderboard([tiny_library], tmp_path / "hf", **kwargs)
    vl = run_leaderboard([tiny_library], tmp_path / "vllm", backend="vllm", **kwargs)
    assert vl["backend"] == "vllm"
    served = {(r["entry"], r["backend"]) for r in vl["rows"]}
    assert ("delta_mean[hop1+hop2]", "vllm") in served and ("oracle-routing[hop1+hop2+target]", "vllm") in served
    assert {b for e, b in served if e.startswith("arrow[")} == {"hf"}
    table = lambda s: {(c["entry"], c["task"]): c["values"] for c in s["cells"]}  # noqa: E731
    assert table(vl) == table(hf) and len(table(hf)) >= 4 * 10
    assert (tmp_path / "vllm" / "leaderboard.md").read_text() == (tmp_path / "hf" / "leaderboard.md").read_text()


def test_two_workers_give_the_serial_table_and_the_same_run_files(tiny_library, tmp_path):
    """Runs in worker processes (``--workers 2``) write the same run dirs and give the same cells as
    the serial ladder, in ladder order; a second serial pass finds every worker's run cached."""
    kwargs = {
        "methods": ("delta_mean", "seq_arrow", "arrow"),
        "tasks": ["lorareuse_twohop_f", "lorareuse_hop1_f", "lorareuse_twohop_f_mc"],
        "limit": 3,
        "batch_size": 8,
        "log": lambda m: None,
    }
    serial = run_leaderboard([tiny_library], tmp_path / "serial", **kwargs)
    logs: list[str] = []
    parallel = run_leaderboard([tiny_library], tmp_path / "workers", workers=2, **{**kwargs, "log": logs.append})
    table = lambda s: {(c["entry"], c["task"]): c["values"] for c in s["cells"]}  # noqa: E731
    assert table(parallel) == table(serial) and len(table(serial)) >= 3 * 10
    assert [r["entry"] for r in parallel["rows"]] == [r["entry"] for r in serial["rows"]]
    runs = lambda d: sorted(p.relative_to(d).as_posix() for p in (d / "runs").rglob("*.jsonl"))  # noqa: E731
    assert runs(tmp_path / "workers") == runs(tmp_path / "serial")
    run_lines = [line for line in logs if line.startswith("[")]
    assert len(run_lines) == len(parallel["rows"]) // 3 and not any(line.endswith(": cached") for line in run_lines)
    again: list[str] = []
    run_leaderboard([tiny_library], tmp_path / "workers", **{**kwargs, "log": again.append})
    assert again and all(line.endswith(": cached") for line in again)
    with pytest.raises(ConfigError, match="--workers 0 is invalid"):
        run_leaderboard([tiny_library], tmp_path / "zero", workers=0, **kwargs)


def test_the_papers_library_with_ac_is_in_the_ladder_and_flagged(tiny_library):
    import copy

    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.report.tables import to_markdown

    manifest = copy.deepcopy(load_library(tiny_library).manifest)
    manifest["experts"]["ac"] = dict(manifest["experts"]["target"], split="ac", contaminated=True)
    entries = ladder(manifest)
    labels = [e.label for e in entries]
    assert "expert:ac" in labels
    for m in ("delta_mean", "factor_mean", "svd", "ties", "dare", "arrow", "seq_arrow"):
        assert f"{m}[hop1+hop2+ac]" in labels and f"{m}[hop1+hop2+target]" in labels
    assert {e.group for e in entries if "ac" in e.experts} == {"expert", "library-3ac"}
    cells = [
        {
            "library": "lib",
            "entry": e.label,
            "task": "lorareuse_twohop_f",
            "mean": 0.5,
            "low": 0.4,
            "high": 0.6,
            "interval": "wilson",
            "n": 100,
            "chance": 0.02,
            "chance_how": "answer prior",
            "seeds": 1,
            "experts": "+".join(e.experts),
            "group": e.group,
        }
        for e in entries
    ]
    md = to_markdown(cells, [])
    assert "| delta_mean[hop1+hop2+ac] ⚠ |" in md and "| delta_mean[hop1+hop2+target] |" in md
    assert "contaminated by design" in md


def test_cache_keys_change_with_the_package_version_and_the_methods_code(tiny_library, tmp_path, monkeypatch):
    import sys

    import lorareuse_plugin
    from lorareuse_plugin.library.manifest import load_library
    from lorareuse_plugin.report.leaderboard import _run_key
    from lorareuse_plugin.report.taskpool import TaskPool
    from lorareuse_plugin.reuse.registry import MethodInfo
    from lorareuse_plugin.reuse.spec import parse_spec

    lib = load_library(tiny_library)
    entry = next(e for e in ladder(lib.manifest) if e.method == "delta_mean")
    pool = TaskPool(("lorareuse_twohop_f",), ())
    run_key = _run_key(lib, entry, pool, None, "hf", "base")
    spec_key = parse_spec(lib, "delta_mean", "hop1+hop2").key
    monkeypatch.setattr(lorareuse_plugin, "__version__", "9.9.9")
    assert _run_key(lib, entry, pool, None, "hf", "base") != run_key  # leaderboard runs
    assert parse_spec(lib, "delta_mean", "hop1+hop2").key != spec_key  # merged adapters and --use_cache

    module = tmp_path / "lorareuse_probe_method.py"
    module.write_text("def merge(): return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    info = MethodInfo("probe", "average", "lorareuse_probe_method", "")
    before = info.code_sha256
    module.write_text("def merge(): return 2  # a fixed bug\n")
    sys.modules.pop("lorareuse_probe_method", None)
    assert info.code_sha256 != before

    # a task that is not ours: its YAML (and local data) under --include_path is part of the key
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "mine.yaml").write_text("task: mine\n")
    theirs = TaskPool(("lorareuse_twohop_f",), ("mine",), (tasks,))
    before = _run_key(lib, entry, theirs, None, "hf", "base")
    (tasks / "mine.yaml").write_text("task: mine\ngeneration_kwargs: {until: ['\\n\\n']}\n")
    assert _run_key(lib, entry, theirs, None, "hf", "base") != before


def test_apply_chat_template_sends_every_prompt_in_the_bases_chat(tiny_library, tmp_path):
    from transformers import AutoTokenizer

    from lorareuse_plugin.base.chat import chat_prompt

    out = tmp_path / "chat"
    kwargs = dict(methods=("delta_mean",), tasks=["lorareuse_hop1_f"], limit=2, batch_size=8, log=lambda m: None)
    run_leaderboard([tiny_library], out, apply_chat_template=True, **kwargs)
    manifest = json.loads((tiny_library / "manifest.json").read_text())
    tok = AutoTokenizer.from_pretrained(manifest["base"]["name_or_path"])
    runs = out / "runs" / "tiny_twohop_f" / "seed0"
    for run in ("base", "delta_mean_hop1-hop2"):
        sample = json.loads((runs / run / "samples_lorareuse_hop1_f.jsonl").read_text().splitlines()[0])
        prompt = sample["arguments"][0][0]  # (context, generation kwargs) of the one request
        assert prompt == chat_prompt(tok, sample["doc"]["prompt"]) != sample["doc"]["prompt"]
    plain: list[str] = []  # the same ladder without the template is other runs, not the cached ones
    run_leaderboard([tiny_library], out, log=plain.append, **{k: v for k, v in kwargs.items() if k != "log"})
    assert not any(line.endswith(": cached") for line in plain)


def test_apply_chat_template_on_a_base_without_one_is_refused_before_any_run(tiny_llama, tmp_path):
    import shutil

    from lorareuse_plugin.report.leaderboard import check_chat_template

    check_chat_template(str(tiny_llama))  # our tokenizers carry a template
    bare = tmp_path / "bare"
    shutil.copytree(tiny_llama, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="has no chat template: drop the flag"):
        check_chat_template(str(bare))
