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


def _random_layer(torch, in_features: int, out: int, ranks: list[int], top_k: int):
    from lorareuse_plugin.reuse.arrow_fused import FusedArrowLayer

    owner = [e for e, r in enumerate(ranks) for _ in range(r)]
    return FusedArrowLayer(
        protos=torch.randn(len(ranks), in_features),
        a_cat=torch.randn(sum(ranks), in_features),
        b_cat=torch.randn(out, sum(ranks)),
        owner=torch.tensor(owner),
        experts=len(ranks),
        top_k=top_k,
        temperature=0.7,
    )


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_a_group_equals_its_members_routed_alone(top_k):
    """One shared projection for modules reading one input gives each member exactly what its own
    fused layer gives; a member called with another tensor computes afresh (never a stale result)."""
    import torch

    from lorareuse_plugin.reuse.arrow_fused import FusedArrowGroup

    torch.manual_seed(0)
    layers = [_random_layer(torch, 16, out, ranks, top_k) for out, ranks in ((8, [2, 3, 1]), (5, [4, 2, 2]))]
    x, other = torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    group = FusedArrowGroup(layers)
    with torch.no_grad():
        for i, (layer, inp) in enumerate(zip(layers, (x, other), strict=True)):  # member 1 reads another input
            alone = FusedArrowGroup([layer]).add_delta(0, inp, torch.zeros(2, 7, layer.b_cat.shape[0]))
            shared = group.add_delta(i, inp, torch.zeros(2, 7, layer.b_cat.shape[0]))
            assert torch.allclose(shared, alone, atol=1e-5)
            assert float(alone.abs().max()) > 0.1
    # the same tensor object changed in place between two members: recomputed, not served stale
    changed = x.clone()
    with torch.no_grad():
        group.add_delta(0, changed, torch.zeros(2, 7, 8))
        changed.mul_(-2.0)
        shared = group.add_delta(1, changed, torch.zeros(2, 7, 5))
        alone = FusedArrowGroup([layers[1]]).add_delta(0, changed, torch.zeros(2, 7, 5))
    assert torch.allclose(shared, alone, atol=1e-5)
    if top_k == 1:  # by hand, member 0: the winner's B(A x) only
        tok = x.reshape(-1, 16)
        win = (tok @ layers[0].protos.T).abs().argmax(1)
        a, b, owner = layers[0].a_cat, layers[0].b_cat, layers[0].owner
        by_hand = torch.stack([b[:, owner == w] @ (a[owner == w] @ t) for t, w in zip(tok, win, strict=True)])
        got = FusedArrowGroup([layers[0]]).add_delta(0, x, torch.zeros(2, 7, 8)).reshape(-1, 8)
        assert torch.allclose(got, by_hand, atol=1e-4)


def test_with_autograd_on_the_group_gives_the_same_delta_and_the_right_gradient():
    """Inference adds in place; with autograd on (training through the routed model) the same delta
    comes out of place, and the input's gradient is the by-hand top-1 delta's."""
    import torch

    from lorareuse_plugin.reuse.arrow_fused import FusedArrowGroup

    torch.manual_seed(1)
    layers = [_random_layer(torch, 16, out, ranks, 1) for out, ranks in ((8, [2, 3, 1]), (5, [4, 2, 2]))]
    x = torch.randn(2, 7, 16)
    group = FusedArrowGroup(layers)
    with torch.no_grad():
        want = [group.add_delta(i, x, torch.zeros(2, 7, la.b_cat.shape[0])) for i, la in enumerate(layers)]
    xg = x.clone().requires_grad_(True)
    got = [group.add_delta(i, xg, torch.zeros(2, 7, la.b_cat.shape[0])) for i, la in enumerate(layers)]
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-5)
    sum(g.sum() for g in got).backward()
    xh = x.reshape(-1, 16).clone().requires_grad_(True)
    by_hand = 0
    for la in layers:  # the winner's rank rows only: (A x ⊙ mask) Bᵀ
        win = (xh.detach() @ la.protos.T).abs().argmax(1)
        mask = (la.owner[None, :] == win[:, None]).float()
        by_hand = by_hand + (((xh @ la.a_cat.T) * mask) @ la.b_cat.T).sum()
    by_hand.backward()
    assert float(xh.grad.abs().max()) > 0.1
    assert torch.allclose(xg.grad.reshape(-1, 16), xh.grad, atol=1e-4)


def test_the_probe_groups_layers_that_read_one_input(test_base):
    from transformers import AutoModelForCausalLM

    from lorareuse_plugin.reuse.arrow_fused import shared_inputs

    model = AutoModelForCausalLM.from_pretrained(test_base)
    layer = "model.layers.0"
    names = [f"{layer}.self_attn.{m}_proj" for m in "qkvo"] + [f"{layer}.mlp.{m}_proj" for m in ("gate", "up", "down")]
    groups = sorted(sorted(g) for g in shared_inputs(model, sorted(names)))  # members in call order
    attn, mlp = f"{layer}.self_attn", f"{layer}.mlp"
    assert groups == sorted(
        [
            [f"{attn}.k_proj", f"{attn}.q_proj", f"{attn}.v_proj"],
            [f"{attn}.o_proj"],
            [f"{mlp}.down_proj"],
            [f"{mlp}.gate_proj", f"{mlp}.up_proj"],
        ]
    )
