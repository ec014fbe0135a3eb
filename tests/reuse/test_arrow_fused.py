"""Our fused Arrow forward equals PEFT's Arrow layers (same exact prototypes) on the test-size base."""

import pytest


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_fused_arrow_equals_peft_arrow(tiny_library, test_base, top_k):
    import torch
    from transformers import AutoModelForCausalLM

    from lorareuse_plugin.reuse import arrow
    from lorareuse_plugin.reuse.spec import parse_spec

    ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46], [1, 50, 51, 52, 53, 54, 55, 56]])
    out = {}
    for impl in ("fused", "peft"):
        spec = parse_spec(tiny_library, "arrow", "hop1+hop2+target", top_k=top_k, arrow_impl=impl)
        with torch.no_grad():
            model = arrow.build(AutoModelForCausalLM.from_pretrained(test_base), spec).eval()
            out[impl] = model(input_ids=ids).logits.log_softmax(-1)
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(test_base)(input_ids=ids).logits.log_softmax(-1)
    assert float((out["fused"] - out["peft"]).abs().max()) < 1e-5
    assert float((out["fused"] - base).abs().max()) > 1e-3  # the experts do change the model


def test_fused_arrow_refuses_an_unknown_impl(tiny_library):
    from lorareuse_plugin.errors import ConfigError
    from lorareuse_plugin.reuse.spec import parse_spec

    with pytest.raises(ConfigError, match="arrow_impl='triton' is unknown: use one of fused, peft"):
        parse_spec(tiny_library, "arrow", "hop1+hop2", arrow_impl="triton")
