"""``targets: all-linear`` resolved per architecture (Llama's and GPT-2's names), never the head or
embeddings, and a real PEFT expert trained with it on each."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorareuse_plugin.data import formats as fmt
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.library.recipe import ExpertRecipe, parse_recipe
from lorareuse_plugin.library.targets import linear_suffixes, resolve_targets

LLAMA = ("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj")
GPT2 = ("c_attn", "c_fc", "c_proj")


def _gpt2():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=384, n_embd=32, n_layer=2, n_head=2, n_positions=64))


def _llama(path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


def _recipe(targets: object) -> dict:
    return {
        "name": "t",
        "data": {"family": "twohop", "familiarity": "F", "n_test": 12, "n_target": 6},
        "defaults": {"targets": targets},
        "experts": {"hop1": {}},
    }


def test_all_linear_parses_and_is_kept_for_the_base_to_resolve() -> None:
    recipe = parse_recipe(_recipe("all-linear"))
    assert recipe.experts[0].targets == ("all-linear",)
    with pytest.raises(ConfigError, match="on its own"):
        parse_recipe(_recipe(["q_proj", "all-linear"]))
    with pytest.raises(ConfigError, match="lm_head"):
        parse_recipe(_recipe(["q_proj", "lm_head"]))


def test_all_linear_resolves_per_architecture_without_head_or_embeddings(tiny_llama: Path) -> None:
    llama, gpt2 = _llama(tiny_llama), _gpt2()
    assert linear_suffixes(llama) == LLAMA
    assert linear_suffixes(gpt2) == GPT2  # GPT-2's Conv1D layers; lm_head (Linear) left out
    assert resolve_targets(gpt2, ("all-linear",)) == GPT2
    assert resolve_targets(gpt2, ("c_attn",)) == ("c_attn",)  # named targets pass through


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_an_all_linear_expert_trains_and_saves_real_module_names(arch: str, tiny_llama: Path, tmp_path: Path) -> None:
    import json

    from transformers import AutoTokenizer

    from lorareuse_plugin.library.train import train_expert

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = _llama(tiny_llama) if arch == "llama" else _gpt2()
    records = [fmt.qa(f"q{i}", "Where was Mira Volk born?", "Zelandia") for i in range(4)]
    expert = ExpertRecipe("hop1", "hop1", targets=("all-linear",), epochs=2, batch_size=2)
    peft_model, loss = train_expert(model, tok, records, expert, seed=0, progress=False)
    peft_model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert tuple(sorted(saved["target_modules"])) == (LLAMA if arch == "llama" else GPT2)
    assert loss == loss  # a number, not NaN
    wrapped = {n.rsplit(".", 2)[-2] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    assert "lm_head" not in wrapped and not wrapped & {"wte", "embed_tokens"}
