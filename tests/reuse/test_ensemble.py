"""ensemble: the served distribution is the weighted mean of the experts' distributions."""

import torch


def test_mixture_is_the_weighted_mean_of_the_experts_distributions(tiny_library, test_base):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lorareuse_plugin.reuse.ensemble import mixture_logprobs

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(test_base), str(tiny_library / "experts/hop1"), adapter_name="hop1"
    )
    model.load_adapter(str(tiny_library / "experts/hop2"), adapter_name="hop2")
    model.eval()
    ids = torch.tensor([[1, 40, 41, 42, 43, 44], [1, 50, 51, 52, 53, 54]])
    p = {}
    for e in ("hop1", "hop2"):
        model.set_adapter(e)
        with torch.no_grad():
            p[e] = torch.softmax(model(input_ids=ids).logits, -1)
    assert (p["hop1"] - p["hop2"]).abs().max() > 1e-3  # two different experts, so the weights matter
    mixed = mixture_logprobs(model, ("hop1", "hop2"), (3.0, 7.0), ids)  # weights are normalised
    assert torch.allclose(mixed.exp(), 0.3 * p["hop1"] + 0.7 * p["hop2"], atol=1e-6)
    assert torch.allclose(mixed.exp().sum(-1), torch.ones(2, 6), atol=1e-5)
