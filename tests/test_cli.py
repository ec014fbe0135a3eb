import json
import subprocess
import sys

import pytest

from lorareuse_plugin.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lorareuse_plugin.cli", *args], capture_output=True, text=True)


def test_data_export_cli(tmp_path):
    out = tmp_path / "exp"
    proc = run_cli(
        "data",
        "export",
        "--family",
        "twohop",
        "--familiarity",
        "f",
        "--n-test",
        "4",
        "--n-target",
        "4",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "leakage check passed" in proc.stdout
    info = json.loads((out / "splits.json").read_text())
    assert info["sizes"]["n_test"] == 4 and info["familiarity"] == "F"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--family", "twohop", "--familiarity", "Q"], "unknown familiarity 'Q'"),
        (["--family", "nope", "--familiarity", "F"], "unknown family 'nope'"),
        (["--family", "twohop", "--familiarity", "F", "--n-test", "-5"], "n_test=-5 is invalid"),
        (["--family", "math_ss", "--familiarity", "R"], "no familiarity axis"),
        (["--familiarity", "F"], "the following arguments are required: --family"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    out = tmp_path / "never"
    proc = run_cli("data", "export", *args, "--out", str(out))
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_unwritable_output_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["data", "export", "--family", "twohop", "--familiarity", "F", "--out", str(blocker / "sub")])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and len(err.strip().splitlines()) == 1


def test_importing_the_package_stays_cheap():
    code = (
        "import sys, lorareuse_plugin, lorareuse_plugin.cli, lorareuse_plugin.data.build;"
        "heavy = [m for m in ('torch', 'vllm', 'transformers', 'lm_eval', 'datasets') if m in sys.modules];"
        "print(heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_merge_cli_writes_a_peft_adapter(tiny_library, tmp_path):
    out = tmp_path / "merged"
    proc = run_cli(
        "merge",
        "--library",
        str(tiny_library),
        "--experts",
        "hop1,hop2",
        "--method",
        "svd",
        "--param",
        "rank=4",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 4 and "lm_head" not in cfg["target_modules"]
    assert (out / "adapter_model.safetensors").is_file()
    bad = run_cli(
        "merge",
        "--library",
        str(tiny_library),
        "--experts",
        "hop1,hop2",
        "--method",
        "seq_arrow",
        "--out",
        str(tmp_path / "x"),
    )
    assert bad.returncode == 2 and "routing method" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_methods_cli_lists_every_method():
    proc = run_cli("methods")
    assert proc.returncode == 0
    for name in (
        "delta_mean",
        "factor_mean",
        "svd",
        "ties",
        "dare",
        "task_arithmetic",
        "arrow",
        "seq_arrow",
        "oracle",
        "single",
    ):
        assert name in proc.stdout


def test_lorareuse_eval_runs_lorareuse_hf_and_reports_bad_args_in_one_line(tiny_library, test_base, tmp_path):
    import os
    from pathlib import Path

    exe = Path(sys.executable).with_name("lorareuse-eval")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    folders = []
    for _ in range(2):  # two runs of one spec land in one folder named by what ran (no device given: cpu)
        ok = subprocess.run(
            [
                str(exe),
                "run",
                "--model",
                "lorareuse-hf",
                "--model_args",
                f"library={tiny_library},method=delta_mean,experts=hop1+hop2,dtype=float32",
                "--tasks",
                "lorareuse_hop1_f",
                "--limit",
                "2",
                "--metadata",
                '{"lorareuse_n_test": 4, "lorareuse_n_target": 3}',
                "--output_path",
                "runs/",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert ok.returncode == 0, ok.stderr[-3000:]
        assert "lorareuse_hop1_f" in ok.stdout
        assert " INFO " not in ok.stdout  # results on stdout, logs (if any) on stderr
        folders.append(sorted(p.name for p in (tmp_path / "runs").iterdir()))
    assert folders[0] == folders[1] == [f"lorareuse-hf__tiny_twohop_f__delta_mean_hop1+hop2__{test_base.name}"]
    results = next((tmp_path / "runs" / folders[0][0]).glob("results_*.json"))
    assert json.loads(results.read_text())["model_name"] == (
        f"lorareuse-hf__tiny_twohop_f__delta_mean[hop1+hop2]__{test_base.name}"
    )
    bad = subprocess.run(
        [
            str(exe),
            "run",
            "--model",
            "lorareuse-hf",
            "--model_args",
            f"library={tiny_library},method=avrage",
            "--tasks",
            "lorareuse_hop1_f",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("lorareuse-eval: error: unknown method 'avrage'")


def test_task_arithmetic_at_lambda_half_writes_the_delta_mean_adapter(tiny_library, tmp_path):
    """Through the CLI, as real PEFT adapter files: lambda=1/2 over two experts is the delta mean,
    the default lambda=1 twice it (the sum)."""
    import torch

    from lorareuse_plugin.reuse.lora_io import read_adapter

    def merged(name: str, *extra: str):
        out = tmp_path / name
        proc = run_cli("merge", "--library", str(tiny_library), "--experts", "hop1,hop2", *extra, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        return read_adapter(out)

    half = merged("half", "--method", "task_arithmetic", "--param", "lambda=0.5")
    mean = merged("mean", "--method", "delta_mean")
    total = merged("sum", "--method", "task_arithmetic")
    for m in mean.modules:
        assert torch.allclose(half.delta(m), mean.delta(m), atol=1e-6)
        assert torch.allclose(total.delta(m), 2 * mean.delta(m), atol=1e-6)


@pytest.mark.parametrize(
    ("model_args", "extra", "message"),
    [
        (
            "library={lib},experts=hop1,hop2,method=svd",
            [],
            "lorareuse-eval: error: --model_args experts=hop1,hop2: experts are joined with '+', not a comma",
        ),
        ("library={lib},metod=svd,experts=hop1+hop2", [], "unknown model_args key 'metod': did you mean method=?"),
        ("library={lib},experts=hop1+hop2", [], "method= is required: one of base, delta_mean"),
        (
            "library={lib},method=svd",
            ["--tasks", "lorareuse_twohop_ff"],
            "unknown task 'lorareuse_twohop_ff': did you mean lorareuse_twohop_f",
        ),
        (
            "library={lib},method=svd",
            ["--metadata", '{"lorareuse_family": "math_ss"}'],
            "--metadata lorareuse_family: each task sets this itself",
        ),
        (
            "library={lib},method=svd",
            ["--metadata", '{"lorareuse_n_tset": 4}'],
            "unknown task metadata key(s) lorareuse_n_tset",
        ),
        (
            "library={lib},method=svd",
            ["--tasks", "lorareuse_twohop"],  # a group: its F tasks are the library's family
            "the library was trained on another twohop_f world (n_target=3, n_test=4) than this task generates",
        ),
    ],
)
def test_lm_eval_path_mistakes_are_one_line_before_any_model_loads(tiny_library, tmp_path, model_args, extra, message):
    import time
    from pathlib import Path

    exe = Path(sys.executable).with_name("lorareuse-eval")
    args = ["run", "--model", "lorareuse-hf", "--model_args", model_args.format(lib=tiny_library)]
    if "--tasks" not in extra:
        extra = [*extra, "--tasks", "lorareuse_hop1_f"]
    start = time.perf_counter()
    bad = subprocess.run([str(exe), *args, *extra, "--device", "cpu"], capture_output=True, text=True, cwd=tmp_path)
    took = time.perf_counter() - start
    assert bad.returncode == 2, bad.stderr[-2000:]
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[-1] and lines[-1].startswith("lorareuse-eval: error:")
    assert took < 5  # checked before lm-eval imports the model's module, let alone loads a model


def test_the_whole_suite_on_dummy_prints_group_rows_and_says_each_warning_once(tmp_path):
    """`lorareuse-eval run --model dummy --tasks lorareuse --limit 5`: every group has its summary row,
    stdout carries results only, and no line repeats on stderr more than three times."""
    import collections
    import os
    import re
    from pathlib import Path

    exe = Path(sys.executable).with_name("lorareuse-eval")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(
        [str(exe), "run", "--model", "dummy", "--tasks", "lorareuse", "--limit", "5"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    groups_table = re.split(r"\|\s*Groups\s*\|", proc.stdout, maxsplit=1)
    assert len(groups_table) == 2, proc.stdout[-3000:]
    for group in ("lorareuse", "lorareuse_twohop", "lorareuse_math", "lorareuse_probes"):
        rows = [r for r in groups_table[1].splitlines() if re.match(rf"\|\s*(- )?{group}\s*\|", r)]
        assert rows, f"no summary row for {group}"
    assert " INFO " not in proc.stdout and " WARNING " not in proc.stdout
    # progress bars are not messages: judged on the raw line (stripping the log prefix would cut a bar's
    # "%|" and leave "[00:00<00:00, 83551.87it/s]", which four equally fast bars repeat)
    messages = [line for line in proc.stderr.splitlines() if line.strip() and "%|" not in line]
    lines = [re.sub(r"^\S+ \S+\s+", "", line) for line in messages]
    repeated = {line: n for line, n in collections.Counter(lines).items() if n > 3}
    assert not repeated, repeated


def test_verbose_is_taken_anywhere_and_third_party_logs_stay_off_stdout(monkeypatch, capsys):
    """Quiet by default: vLLM logs (INFO on stdout by default) go to stderr at WARNING; `--verbose`
    anywhere on the line turns INFO back on, and the subcommand still parses."""
    import os

    for var in ("VLLM_LOGGING_STREAM", "VLLM_LOGGING_LEVEL", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(var, raising=False)
    assert main(["methods"]) == 0
    assert os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.stderr" and os.environ["VLLM_LOGGING_LEVEL"] == "WARNING"
    for var in ("VLLM_LOGGING_STREAM", "VLLM_LOGGING_LEVEL", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(var, raising=False)
    assert main(["methods", "--verbose"]) == 0
    assert os.environ["VLLM_LOGGING_LEVEL"] == "INFO" and os.environ["TRANSFORMERS_VERBOSITY"] == "info"
    assert "delta_mean" in capsys.readouterr().out
