"""Shared fixtures: a tiny random Llama with a locally trained tokenizer, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


def world_texts() -> list[str]:
    """Every prompt and training text of the default worlds (what the tokenizer should cover)."""
    from lorareuse_plugin.data.build import build_dataset, make_spec
    from lorareuse_plugin.data.families import FAMILIES

    texts: list[str] = []
    for family in FAMILIES.values():
        for fam in [f.value for f in family.familiarities] or [None]:
            ds = build_dataset(make_spec(family.name, fam))
            for name in family.all_splits:
                for rec in ds.splits[name]:
                    texts.append(rec.get("text") or rec["cot_prompt"] + " " + rec["cot"])
    return texts


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama (hidden 64, 2 heads of 32) saved as an HF model dir."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lorareuse_plugin.base.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tiny_llama")
    tok = train_tokenizer(world_texts(), vocab_size=384)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def lorareuse_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private cache for the whole session, so tests never touch ~/.cache/lorareuse."""
    path = tmp_path_factory.mktemp("lorareuse_cache")
    os.environ["LORAREUSE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def test_base(lorareuse_cache: Path) -> Path:
    """The embedded base at ``--size test`` (trained from scratch in a few seconds)."""
    from lorareuse_plugin.base.build import build_base

    path, _ = build_base("test", progress=False)
    return path


TINY_RECIPE = {
    "name": "tiny_twohop_f",
    "base": "test",
    "data": {"family": "twohop", "familiarity": "F", "seed": 0, "n_test": 4, "n_target": 3},
    "defaults": {"rank": 4, "alpha": 8, "epochs": 2, "lr": 5e-3, "batch_size": 8},
    "experts": {"hop1": {}, "hop2": {}, "target": {}, "union": {"replay": 0.5}, "oracle": {}},
}


@pytest.fixture(scope="session")
def tiny_library(test_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full five-expert two-hop F library on the test base (2 epochs each: plumbing, not science)."""
    import yaml

    from lorareuse_plugin.library.build import build_library
    from lorareuse_plugin.library.recipe import load_recipe

    root = tmp_path_factory.mktemp("tiny_library")
    recipe_file = root / "tiny_twohop_f.yaml"
    recipe_file.write_text(yaml.safe_dump(TINY_RECIPE))
    out = root / "lib"
    build_library(load_recipe(recipe_file), out, progress=False, log=lambda m: None)
    return out


def tiny_task_metadata() -> dict:
    data = TINY_RECIPE["data"]
    return {"lorareuse_seed": data["seed"], "lorareuse_n_test": data["n_test"], "lorareuse_n_target": data["n_target"]}
