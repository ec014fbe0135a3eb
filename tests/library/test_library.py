import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorareuse_plugin.errors import LibraryError
from lorareuse_plugin.library.build import build_library
from lorareuse_plugin.library.manifest import load_library
from lorareuse_plugin.library.recipe import parse_recipe

RECIPE = {
    "name": "tiny_twohop_f",
    "base": "test",
    "data": {"family": "twohop", "familiarity": "F", "seed": 0, "n_test": 4, "n_target": 3},
    "defaults": {"rank": 4, "alpha": 8, "epochs": 2, "lr": 5e-3, "batch_size": 8},
    "experts": {"hop1": {}, "hop2": {"rank": 2}, "target": {"targets": ["q_proj", "v_proj"]}},
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def library(test_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("lib") / "tiny"
    logs: list[str] = []
    manifest = build_library(parse_recipe(RECIPE), out, progress=False, log=logs.append)
    return out, manifest, logs


def test_library_builds_with_a_complete_manifest(library, test_base):
    from lorareuse_plugin.base.resolve import resolve_base
    from lorareuse_plugin.data.build import build_dataset, make_spec

    out, manifest, logs = library
    assert set(manifest["experts"]) == {"hop1", "hop2", "target"}
    assert json.loads((out / "manifest.json").read_text()) == manifest
    ref = resolve_base(str(test_base))
    assert manifest["base"]["config_hash"] == ref.config_hash
    assert manifest["base"]["weights_hash"] == ref.weights_hash
    ds = build_dataset(make_spec("twohop", "F", 0, 4, 3))
    for e in manifest["experts"].values():
        d = out / e["path"]
        assert e["data_hash"] == ds.hashes[e["split"]]
        assert e["seed"] == 0 and e["records"] == len(ds.splits[e["split"]])
        for fname, digest in e["files"].items():
            assert _sha(d / fname) == digest
        assert e["weights_hash"] == _sha(d / "adapter_model.safetensors")
        cfg = json.loads((d / "adapter_config.json").read_text())
        assert cfg["r"] == e["rank"] and cfg["lora_alpha"] == e["alpha"]
        assert set(cfg["target_modules"]) == set(e["targets"])
        assert "lm_head" not in cfg["target_modules"]
        assert 0.0 <= e["own_probe_mean"] <= 1.0 and e["final_loss"] > 0
    assert manifest["experts"]["hop2"]["rank"] == 2
    assert manifest["experts"]["hop1"]["own_probe"].keys() == {"probe_hop1"}
    assert manifest["experts"]["target"]["own_probe"].keys() == {"probe_target"}
    assert len(logs) == 4 and logs[-1].startswith("controls:")


def test_adapters_load_in_peft_and_change_the_output(library, test_base):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out, manifest, _ = library
    base = AutoModelForCausalLM.from_pretrained(test_base)
    ids = torch.tensor([[1, 50, 60, 70, 80]])
    with torch.no_grad():
        ref = base(input_ids=ids).logits
        model = PeftModel.from_pretrained(base, out / "experts" / "hop1")
        assert (model(input_ids=ids).logits - ref).abs().max() > 1e-4


def test_second_build_skips_finished_experts(library, tmp_path):
    out, manifest, _ = library
    mtimes = {
        n: (out / e["path"] / "adapter_model.safetensors").stat().st_mtime_ns for n, e in manifest["experts"].items()
    }
    logs: list[str] = []
    again = build_library(parse_recipe(RECIPE), out, progress=False, log=logs.append)
    assert logs == [f"expert {n}: up to date, skipped" for n in ("hop1", "hop2", "target")]
    assert again["experts"] == manifest["experts"]
    for n, e in manifest["experts"].items():
        assert (out / e["path"] / "adapter_model.safetensors").stat().st_mtime_ns == mtimes[n]


def test_corrupted_or_missing_adapter_file_is_detected_and_rebuilt(library, tmp_path):
    import shutil

    src, _, _ = library
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    weights = out / "experts" / "hop1" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(LibraryError, match="hop1: .* does not match its manifest hash"):
        load_library(out)
    (out / "experts" / "hop2" / "adapter_config.json").unlink()
    logs: list[str] = []
    build_library(parse_recipe(RECIPE), out, progress=False, log=logs.append)
    assert any("hop1" in line and "retraining" in line for line in logs)
    assert any("hop2" in line and "missing" in line and "retraining" in line for line in logs)
    load_library(out)  # consistent again


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lorareuse_plugin.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_verify_cli_reports_corruption_in_one_line(library, tmp_path):
    import shutil

    src, _, _ = library
    out = tmp_path / "lib"
    shutil.copytree(src, out)
    ok = run_cli("library", "verify", str(out))
    assert ok.returncode == 0, ok.stderr
    (out / "experts" / "target" / "adapter_model.safetensors").write_bytes(b"truncated")
    bad = run_cli("library", "verify", str(out))
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "target" in bad.stderr


def _write(tmp_path: Path, recipe: dict) -> Path:
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(recipe))
    return p


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"experts": {"hop3": {}}}, "split 'hop3' does not exist"),
        ({"experts": {"mine": {"split": "test"}}}, "split 'test' does not exist"),
        ({"experts": {"hop1": {"rank": 0}}}, "rank=0 is invalid"),
        ({"defaults": {"rank": -4}}, "rank=-4 is invalid"),
        ({"experts": {"hop1": {"targets": ["q_proj", "lm_head"]}}}, "lm_head are not allowed"),
        ({"experts": {"hop1": {"colour": "red"}}}, "unknown key(s) colour"),
        ({"data": {"family": "twohop", "familiarity": "Z"}}, "unknown familiarity 'Z'"),
    ],
)
def test_bad_recipes_fail_in_one_line_before_training(tmp_path, change, needle):
    recipe = {**RECIPE, **change}
    out = tmp_path / "out"
    proc = run_cli("library", "build", str(_write(tmp_path, recipe)), "--out", str(out))
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_base_without_target_modules_is_refused(tmp_path, test_base):
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(
        GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=600, bos_token_id=1, eos_token_id=2)
    ).save_pretrained(gpt2)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(test_base).save_pretrained(gpt2)
    out = tmp_path / "out"
    proc = run_cli("library", "build", str(_write(tmp_path, RECIPE)), "--base", str(gpt2), "--out", str(out))
    assert proc.returncode == 2
    assert "has none of the target modules" in proc.stderr and "c_attn" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_unwritable_output_is_refused(tmp_path, test_base):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "lib"
    proc = run_cli("library", "build", str(_write(tmp_path, RECIPE)), "--base", str(test_base), "--out", str(out))
    assert proc.returncode == 2
    assert "cannot write to --out" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_missing_recipe_and_bad_yaml(tmp_path):
    proc = run_cli("library", "build", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "not found" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("experts: [unclosed\n")
    proc = run_cli("library", "build", str(bad))
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr


def test_shipped_recipes_parse():
    from lorareuse_plugin.library.recipe import load_recipe

    root = Path(__file__).resolve().parents[2] / "lorareuse_plugin" / "recipes"
    names = sorted(p.stem for p in root.glob("*.yaml"))
    assert names == ["math_ks_f", "math_ks_r", "math_ss", "twohop_f", "twohop_h", "twohop_r"]
    for p in root.glob("*.yaml"):
        recipe = load_recipe(p)
        assert recipe.name == p.stem
        assert {"target", "union", "oracle"} <= set(recipe.expert_names)
    demo = sorted(p for p in root.glob("demo/*.yaml") if not p.stem.startswith("smollm2_"))
    assert [p.stem for p in demo] == ["math_ks_f", "twohop_f", "twohop_h", "twohop_r"]
    for p in demo:
        recipe, full = load_recipe(p), load_recipe(root / p.name)
        assert recipe.name == f"demo_{p.stem}" and recipe.expert_names == full.expert_names
        assert recipe.data.family == full.data.family and recipe.data.familiarity == full.data.familiarity
    real = sorted(p for p in root.glob("demo/smollm2_*.yaml") if not p.stem.endswith("_known"))
    assert [p.stem for p in real] == ["smollm2_twohop_f", "smollm2_twohop_r"]  # the demo's: same worlds on SmolLM2
    known = load_recipe(root / "demo" / "smollm2_twohop_h_known.yaml")  # H over capitals SmolLM2 knows (chat)
    assert known.data.known is not None and known.data.known.count("capital") == 25
    assert known.data.known.prompt == "chat template" and all(e.chat for e in known.experts)
    for p in real:
        recipe, full = load_recipe(p), load_recipe(root / p.name.removeprefix("smollm2_"))
        assert recipe.name == p.stem and recipe.base == "smollm2"
        assert recipe.data.family == full.data.family and recipe.data.familiarity == full.data.familiarity


def _known_report(path: Path, weights_hash: str) -> Path:
    """A familiarity report (the format `lorareuse familiarity` writes) knowing the first 40 countries'
    capitals and the birth country of everyone born there."""
    from lorareuse_plugin.world import real_facts

    facts = real_facts()
    known = {c.name for c in facts.countries[:40]}
    rows = [{"relation": "capital", "subject": c.name, "known": c.name in known} for c in facts.countries]
    rows += [{"relation": "birth_country", "subject": p.name, "known": p.birth_country in known} for p in facts.people]
    path.write_text(json.dumps({"base": {"name_or_path": "/m/other", "weights_hash": weights_hash}, "facts": rows}))
    return path


def test_a_library_of_known_facts_records_them_and_its_tasks_must_match(tmp_path, test_base):
    """The recipe's data: known (relative to the recipe) shapes the world; the manifest holds the facts;
    lm-eval tasks for the library must be asked with the same known facts, and a report of another base
    is refused before anything is written."""
    from lorareuse_plugin.base.resolve import resolve_base
    from lorareuse_plugin.data.lmeval import load_docs
    from lorareuse_plugin.errors import ConfigError
    from lorareuse_plugin.library.recipe import load_recipe
    from lorareuse_plugin.report.leaderboard import task_metadata

    _known_report(tmp_path / "fam.json", resolve_base("test", progress=False).weights_hash)
    recipe = {
        **RECIPE,
        "name": "tiny_known_r",
        "data": {"family": "twohop", "familiarity": "R", "n_test": 4, "n_target": 3, "known": "fam.json"},
        "experts": {"hop1": {"epochs": 1}},
    }
    parsed = load_recipe(_write(tmp_path, recipe))
    assert parsed.data.known is not None and parsed.data.known.report == str((tmp_path / "fam.json").resolve())
    out = tmp_path / "lib"
    manifest = build_library(parsed, out, progress=False, log=lambda m: None)
    recorded = manifest["data"]["known"]
    assert recorded["report_sha256"] == parsed.data.known.report_sha256 and len(recorded["facts"]) > 40
    meta = {"lorareuse_family": "twohop", "lorareuse_familiarity": "R", "lorareuse_split": "probe_hop1"}
    docs = load_docs(**meta, **task_metadata(manifest), library=str(out))  # what the leaderboard sends
    assert len(docs["test"]) == 4
    sizes = {k: v for k, v in task_metadata(manifest).items() if k != "lorareuse_known"}
    with pytest.raises(ConfigError, match="built from the facts its base knows, this task's without them"):
        load_docs(**meta, **sizes, library=str(out))
    _known_report(tmp_path / "other.json", "not-this-base")
    bad = _write(tmp_path, {**recipe, "data": {**recipe["data"], "known": "other.json"}})
    proc = run_cli("library", "build", str(bad), "--base", str(test_base), "--out", str(tmp_path / "lib2"))
    assert proc.returncode == 2 and "were measured on other, not on this base" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "lib2").exists()


def test_readme_recipe_paths_resolve_from_the_package_outside_a_checkout(tmp_path, monkeypatch):
    """`lorareuse library build adapters/twohop_f.yaml` names a shipped recipe wherever it runs: from
    another directory the path is looked up in the package's recipes; a near miss names the closest."""
    from lorareuse_plugin.errors import ConfigError
    from lorareuse_plugin.library.recipe import RECIPES_DIR, load_recipe

    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "adapters").exists()
    recipe = load_recipe("adapters/twohop_f.yaml")
    assert recipe.path == str(RECIPES_DIR / "twohop_f.yaml") and recipe.name == "twohop_f"
    assert load_recipe("adapters/demo/twohop_f.yaml").data.sizes.n_test == 100
    with pytest.raises(ConfigError, match=r"recipe adapters/twohop_ff.yaml not found: .*did you mean adapters/"):
        load_recipe("adapters/twohop_ff.yaml")


def test_the_wheel_ships_every_recipe_and_the_demo_libraries(tmp_path):
    """Package data, not only a checkout: the wheel holds every recipe, the shipped demo libraries
    (manifest + every expert's files) and the task YAMLs."""
    import zipfile

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), root],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("lorareuse-*.whl"))).namelist())
    recipes = root / "lorareuse_plugin" / "recipes"
    for path in recipes.rglob("*"):
        if path.is_file():
            assert path.relative_to(root).as_posix() in names, path
    assert "lm_eval_tasks/groups/lorareuse.yaml" in names
