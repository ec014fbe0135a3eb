"""The bridge to a real model: the hooked keys are the down_proj inputs, the table is complete."""

import torch

from lorareuse_plugin.theory.bridge import COLUMNS, _keys, bridge, bridge_markdown


def test_the_keys_are_the_down_proj_inputs_at_the_last_token(test_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(test_base, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(test_base)
    keys = _keys(model, tok, ["Q: Where was Ana born?\nA:", "Q: x\nA:"])
    assert keys.shape[:2] == (model.config.num_hidden_layers, 2)
    with torch.no_grad():
        hidden = model(**tok("Q: x\nA:", return_tensors="pt"), output_hidden_states=True).hidden_states
        layer = model.model.layers[1]
        h = (
            hidden[1]
            + layer.self_attn(
                layer.input_layernorm(hidden[1]),
                position_embeddings=model.model.rotary_emb(hidden[1], torch.arange(hidden[1].shape[1])[None]),
                attention_mask=None,
            )[0]
        )
        mlp_in = layer.post_attention_layernorm(h)
        expected = layer.mlp.act_fn(layer.mlp.gate_proj(mlp_in)) * layer.mlp.up_proj(mlp_in)
    assert torch.allclose(keys[1, 1], expected[0, -1], atol=1e-4)


def test_bridge_reports_every_layer_of_a_twohop_library(tiny_library):
    result = bridge(tiny_library, n=3)
    assert result["n"] == 3 and len(result["layers"]) >= 1
    for row in result["layers"]:
        for c in COLUMNS[:4]:
            assert -1.0 - 1e-6 <= row[c]["mean"] <= 1.0 + 1e-6 and row[c]["n"] == 3
    table = bridge_markdown(result)
    assert table.count("\n| ") == len(result["layers"]) + 1
