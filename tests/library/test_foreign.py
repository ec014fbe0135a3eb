"""Adapters from anywhere: LoRAs trained with plain PEFT (not our builder), of different ranks and
target modules, with rank/alpha patterns, read from their own files; ``library import`` + verify."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lorareuse_plugin.errors import ConfigError, LibraryError

# two LoRAs a user might bring: different ranks, different targets, patterns PEFT resolves by regex
FOREIGN = {
    "alpha": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    "beta": {
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["o_proj", "up_proj", "down_proj"],
        # PEFT matches these keys with re.match(rf"(.*\.)?({key})$", module)
        "rank_pattern": {r"layers\.0\.self_attn\.o_proj": 2},
        "alpha_pattern": {"up_proj|down_proj": 4},
    },
}


def adapters_arg(root: Path) -> str:
    """``adapters=`` naming both foreign LoRAs."""
    return "+".join(f"{name}:{root / name}" for name in FOREIGN)


def train_plain_peft(base: Path, out: Path, name: str, steps: int = 4) -> Path:
    """``get_peft_model`` + a few AdamW steps on a fixed text, saved with ``save_pretrained``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(len(name))
    tok = AutoTokenizer.from_pretrained(base)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(**FOREIGN[name], lora_dropout=0.0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    batch = tok(
        ["Q: Where was Mira Volk born?\nA: Zelandia", "The capital of Zelandia is Orvik."],
        padding=True,
        return_tensors="pt",
    )
    for _ in range(steps):
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out / name)
    return out / name


@pytest.fixture(scope="session")
def foreign_loras(test_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain folder with two PEFT LoRA dirs (no manifest): ``<dir>/alpha``, ``<dir>/beta``."""
    out = tmp_path_factory.mktemp("foreign_loras")
    for name in FOREIGN:
        train_plain_peft(test_base, out, name)
    return out


def test_adapter_info_reads_ranks_and_patterns_from_the_files(foreign_loras: Path) -> None:
    from lorareuse_plugin.library.adapter import read_adapter_info

    beta = read_adapter_info("beta", foreign_loras / "beta")
    assert beta.ranks["base_model.model.model.layers.0.self_attn.o_proj".removeprefix("base_model.model.")] == 2
    assert beta.ranks["model.layers.1.self_attn.o_proj"] == 8
    assert beta.rank == 8 and beta.targets == ("down_proj", "o_proj", "up_proj")
    assert beta.scaling("model.layers.0.mlp.up_proj") == 4 / 8  # alpha_pattern, rank r
    assert beta.scaling("model.layers.0.self_attn.o_proj") == 16 / 2  # rank_pattern, alpha lora_alpha
    alpha = read_adapter_info("alpha", foreign_loras / "alpha")
    assert alpha.rank == 4 and alpha.targets == ("q_proj", "v_proj")


def test_factors_equal_peft_own_delta_weights(foreign_loras: Path, test_base: Path) -> None:
    """Our scaled factors give exactly PEFT's ``get_delta_weight`` on every module (patterns included)."""
    import torch
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    from lorareuse_plugin.reuse.lora_io import read_adapter

    for name in FOREIGN:
        ours = read_adapter(foreign_loras / name)
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(test_base), foreign_loras / name)
        seen = 0
        for module_name, mod in model.named_modules():
            if isinstance(mod, LoraLayer) and "default" in mod.lora_A:
                key = module_name.removeprefix("base_model.model.")
                torch.testing.assert_close(
                    ours.delta(key), mod.get_delta_weight("default").float(), rtol=1e-5, atol=1e-7
                )
                seen += 1
        assert seen == len(ours.modules) > 0


def test_folder_and_adapters_arg_are_the_same_library(foreign_loras: Path) -> None:
    from lorareuse_plugin.reuse.spec import parse_spec

    by_folder = parse_spec(str(foreign_loras), "delta_mean")
    by_name = parse_spec(None, "delta_mean", adapters=f"alpha:{foreign_loras / 'alpha'}+beta:{foreign_loras / 'beta'}")
    assert by_folder.experts == by_name.experts == ("alpha", "beta")  # every adapter when none is named
    assert by_folder.library.kind == "folder" and by_name.library.kind == "adapters"
    assert by_folder.to_json()["expert_weights_sha256"] == by_name.to_json()["expert_weights_sha256"]
    assert not by_folder.library.has_world


def test_merged_adapter_of_mixed_ranks_and_targets_is_the_exact_delta_mean(foreign_loras: Path) -> None:
    """delta_mean over rank 4 (q, v) and rank 8/2 (o, up, down): one plain dir, zero-padded to one rank."""
    import torch

    from lorareuse_plugin.reuse.lora_io import read_adapter
    from lorareuse_plugin.reuse.merge import merged_adapter
    from lorareuse_plugin.reuse.spec import parse_spec

    spec = parse_spec(str(foreign_loras), "delta_mean", "alpha+beta")
    merged = read_adapter(merged_adapter(spec))
    a, b = read_adapter(foreign_loras / "alpha"), read_adapter(foreign_loras / "beta")
    cfg = json.loads((merged_adapter(spec) / "adapter_config.json").read_text())
    assert cfg["r"] == cfg["lora_alpha"] and not cfg["rank_pattern"]
    for module in set(a.modules) | set(b.modules):
        want = sum(0.5 * ad.delta(module) for ad in (a, b) if module in ad.modules)
        torch.testing.assert_close(merged.delta(module), want, rtol=1e-5, atol=1e-7)


def test_svd_and_arrow_read_ranks_from_the_weights(foreign_loras: Path) -> None:
    from lorareuse_plugin.reuse.spec import parse_spec

    with pytest.raises(ConfigError, match=r"rank=13 is invalid .* \(total rank 12\)"):
        parse_spec(str(foreign_loras), "svd", "alpha+beta", rank=13)
    parse_spec(str(foreign_loras), "arrow", "alpha+beta")  # mixed ranks/targets: padded, not refused


def test_arrow_pads_experts_to_one_rank_without_changing_them(foreign_loras: Path) -> None:
    import torch

    from lorareuse_plugin.reuse.arrow import padded_dirs
    from lorareuse_plugin.reuse.lora_io import read_adapter
    from lorareuse_plugin.reuse.spec import parse_spec

    spec = parse_spec(str(foreign_loras), "arrow", "alpha+beta")
    dirs = padded_dirs(spec)
    padded = [read_adapter(d) for d in dirs]
    assert len({a.shape[0] for p in padded for a, _ in p.modules.values()}) == 1
    assert set(padded[0].modules) == set(padded[1].modules)
    for name, p in zip(spec.experts, padded, strict=True):
        own = read_adapter(foreign_loras / name)
        for module in p.modules:
            want = own.delta(module) if module in own.modules else torch.zeros_like(p.delta(module))
            torch.testing.assert_close(p.delta(module), want, rtol=1e-5, atol=1e-7)


def _copy_with_config(src: Path, dst: Path, **changes) -> Path:
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg.update(changes)
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"peft_type": "IA3"}, "peft_type 'IA3' is not LORA"),
        ({"init_lora_weights": "pissa"}, "init_lora_weights='pissa' rewrites the base weights"),
        ({"init_lora_weights": "olora"}, "init_lora_weights='olora' rewrites the base weights"),
        ({"target_parameters": ["mlp.experts.down_proj"]}, "target_parameters"),
        ({"use_dora": True}, "DoRA adapters can't be merged exactly"),
        ({"rank_pattern": {"o_proj": 3}}, "has rank 2 but the config says 3"),
        ({"alpha_pattern": {"q_proj(": 3}}, "is not a valid regex"),
    ],
)
def test_foreign_adapter_checks_are_one_line(foreign_loras: Path, tmp_path: Path, changes: dict, message: str) -> None:
    from lorareuse_plugin.library.source import open_library

    bad = _copy_with_config(foreign_loras / "beta", tmp_path / "bad", **changes)
    with pytest.raises(LibraryError, match=message) as e:
        open_library(adapters=f"bad:{bad}")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("alpha", "'alpha' is not NAME:PATH"),
        ("alpha:/x+alpha:/y", "'alpha' is named twice"),
        ("a.b:/x", "can't name an adapter"),
        ("base:/x", "can't name an adapter"),
    ],
)
def test_malformed_adapters_arg(value: str, message: str) -> None:
    from lorareuse_plugin.library.source import open_library

    with pytest.raises(ConfigError, match=message):
        open_library(adapters=value)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lorareuse_plugin.cli", *args], capture_output=True, text=True)


def test_library_import_then_verify_and_tampering_is_caught(foreign_loras: Path, test_base: Path, tmp_path: Path):
    out = tmp_path / "imported"
    ok = _cli(
        "library",
        "import",
        f"alpha={foreign_loras / 'alpha'}",
        f"beta={foreign_loras / 'beta'}",
        "--base",
        str(test_base),
        "--out",
        str(out),
    )
    assert ok.returncode == 0, ok.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "imported" and manifest["base"]["weights_hash"]
    assert manifest["experts"]["beta"]["ranks"] == [2, 8] and manifest["experts"]["alpha"]["source"].endswith("alpha")
    verified = _cli("library", "verify", str(out))
    assert verified.returncode == 0 and "every file matches its hash" in verified.stdout, verified.stderr
    from lorareuse_plugin.models.hf import LorareuseHFLM

    lm = LorareuseHFLM(library=str(out), method="delta_mean", device="cpu", dtype="float32")  # base from the manifest
    info = lm.get_model_info()["lorareuse"]
    assert info["spec"]["library_kind"] == "imported" and info["adapter_check_max_dlogit"] > 0
    del lm
    weights = out / "experts" / "beta" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    tampered = _cli("library", "verify", str(out))
    lines = [x for x in tampered.stderr.splitlines() if x.strip()]
    assert tampered.returncode == 2 and len(lines) == 1
    assert "does not match its manifest hash" in lines[0] and "lorareuse library import" in lines[0]


def test_library_import_refuses_an_adapter_for_another_base(foreign_loras: Path, tmp_path: Path) -> None:
    """A LoRA trained on a narrower Llama: one line, exit 2, nothing written."""
    from transformers import LlamaConfig, LlamaForCausalLM

    other = tmp_path / "other_base"
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=1)
    LlamaForCausalLM(cfg).save_pretrained(other)
    out = tmp_path / "lib"
    bad = _cli("library", "import", f"alpha={foreign_loras / 'alpha'}", "--base", str(other), "--out", str(out))
    lines = [x for x in bad.stderr.splitlines() if x.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "was trained on another base" in lines[0], bad.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["other_base"]


def test_seq_arrow_scores_the_tokens_the_model_sees(foreign_loras: Path, test_base: Path) -> None:
    """With ``max_length`` the scorer keeps a prompt's last tokens, as lm-eval truncates contexts: two prompts
    that differ only before their last 5 tokens then score alike; whole, they do not."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorareuse_plugin.reuse.seq_arrow import SeqArrowScorer
    from lorareuse_plugin.reuse.spec import parse_spec

    spec = parse_spec(str(foreign_loras), "seq_arrow")
    model = AutoModelForCausalLM.from_pretrained(test_base).eval()
    tok = AutoTokenizer.from_pretrained(test_base)
    prompts = ["Q: Where was Mira Volk born?\nA: Zelandia. Orvik", "The capital of Parem is Lisk. Orvik"]
    tails = [tok(p)["input_ids"][-5:] for p in prompts]
    assert tails[0] == tails[1] and tok(prompts[0])["input_ids"] != tok(prompts[1])["input_ids"]
    whole = SeqArrowScorer(spec, model, tok).scores(prompts)
    cut = SeqArrowScorer(spec, model, tok, max_length=5).scores(prompts)
    assert whole[0] != whole[1]
    assert cut[0] == pytest.approx(cut[1], rel=1e-6)
