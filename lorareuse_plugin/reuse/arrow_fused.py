"""Our fused Arrow forward: the same routing as PEFT's Arrow layer, without its per-call costs.

PEFT's layer restacks every expert's A and B on every call, computes every expert's full output
for every token into a ``[tokens, experts, out]`` tensor and then mixes it. Here the experts'
factors are concatenated once at load — per adapted linear layer ``A_cat`` [Σr, in] and ``B_cat``
[out, Σr] with each expert's scaling folded into its B — and a forward hook adds

    [s | z] = x @ [P; A_cat]ᵀ                   # routing scores and every expert's rank projection
    coeff = softmax(top-k(|s|) / T)             # [tokens, experts], 0 outside the top-k
    Δ = (z ⊙ coeff[:, owner]) @ B_catᵀ          # added in place to the layer's output (inference)

— one projection for routing and all experts' ranks at once, the routing weights applied to the
rank slices, one projection back. Top-1 (the default; its softmax is 1) takes the weights as one
row lookup: the winner's row of a 0/1 table that marks its rank rows. Layers that read one input
tensor (q/k/v, gate/up: found by one two-token probe forward at attach) share that projection and
the routing ops: ``x @ [P_q; P_k; P_v; A_q; A_k; A_v]ᵀ`` once, routed over [tokens, members,
experts] once, then each member adds its own slice @ B_mᵀ. The projection's rows are padded to whole
tiles of 16 (a ragged GEMM tile costs up to a quarter more on AVX-512). On the demo base the
experts' LoRA arithmetic is about two-thirds of the overhead, the routing the rest (bench P3's
floor). Mathematically equal to PEFT's sum Σ_e coeff_e·s_e·B_e(A_e x) (tested to 1e-5); only the
summation order differs. Experts may differ in rank and in the modules they adapt: an expert
without a LoRA on a module keeps a zero prototype there, as in the padded PEFT path, and
contributes no rank rows (members of a group with fewer rank rows are padded with zero rows to
the largest, so every member's block has one size).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from lorareuse_plugin.reuse.lora_io import LoraFactors

log = logging.getLogger(__name__)


@dataclass
class FusedArrowLayer:
    """One adapted linear layer's stacked factors, prototypes and routing settings."""

    protos: torch.Tensor  # [experts, in]
    a_cat: torch.Tensor  # [Σr, in]
    b_cat: torch.Tensor  # [out, Σr], scaling folded in
    owner: torch.Tensor  # [Σr]: the expert of each rank row
    experts: int
    top_k: int
    temperature: float


class FusedArrowGroup:
    """The fused layers of the modules that read one input tensor, served by one projection.

    The first member called computes every member's routed rank projection; the others take
    their slice when they are called with *the same tensor object*, unchanged (its version counter),
    and compute afresh otherwise, so a wrong grouping costs time, never correctness."""

    def __init__(self, layers: Sequence[FusedArrowLayer]):
        import torch

        first = layers[0]
        self.experts, self.top_k, self.temperature = first.experts, first.top_k, first.temperature
        self.members = len(layers)
        # top-1 scores each expert as +P and −P: the argmax of the signed scores is the argmax of |x·P|,
        # with no abs pass; top-k needs |x·P| itself for its softmax
        self.signs = 2 if self.top_k == 1 else 1
        self.width = width = self.signs * self.experts  # score columns per member
        self.scored = self.members * width
        # every member's rank rows in a block of the same size R (zero rows pad a smaller one), so the
        # routing weights of [tokens, members] are rows of one table: table[(member, sign, expert)] is 1
        # on that expert's rank rows within the member's block
        ranks = [la.a_cat.shape[0] for la in layers]
        self.block = max(ranks)
        dtype, device = first.a_cat.dtype, first.a_cat.device
        a_blocks = [
            torch.cat([la.a_cat, la.a_cat.new_zeros(self.block - r, la.a_cat.shape[1])])
            for la, r in zip(layers, ranks, strict=True)
        ]
        protos = [torch.cat([la.protos, -la.protos]) if self.signs == 2 else la.protos for la in layers]
        proj = torch.cat(protos + a_blocks)
        # whole tiles of 16 output columns: a GEMM with a ragged last tile costs up to ~25 % more
        # on AVX-512 (90 columns: 129 µs, 96: 105 µs on the demo shapes; bench P3)
        self.proj = torch.cat([proj, proj.new_zeros(-proj.shape[0] % 16, proj.shape[1])])
        self.proj_t = self.proj.T  # a view, taken once
        # [R, out] per member: B transposed once (no transpose per call), zero rows up to the block size
        self.b_ts = [
            torch.cat([la.b_cat.T, la.b_cat.new_zeros(self.block - r, la.b_cat.shape[0])]).contiguous()
            for la, r in zip(layers, ranks, strict=True)
        ]
        self._grad_enabled = torch.is_grad_enabled
        self.table = torch.zeros(self.scored, self.block, dtype=dtype, device=device)
        for m, la in enumerate(layers):
            rows = torch.arange(la.owner.shape[0], device=device)
            for sign in range(self.signs):
                self.table[m * width + sign * self.experts + la.owner, rows] = 1.0
        self.offsets = torch.arange(self.members, device=device) * width  # each member's first table row
        self._x = self._parts = None
        self._version = self._left = 0

    def ranks(self, both: torch.Tensor) -> torch.Tensor:
        """[t, members, R]: the rank-projection columns of ``x @ projᵀ``, as a view."""
        t, n = both.shape
        return both.as_strided((t, self.members, self.block), (n, self.block, 1), both.storage_offset() + self.scored)

    def weighted(self, tok: torch.Tensor) -> torch.Tensor:
        """[t, members, R]: every rank projection times its routing weight (0 outside the top-k).

        Kept to a few tensor calls, views taken with ``as_strided`` and the product written into the
        weights in place: at these sizes each call's dispatch is a measurable share of the routing."""
        import torch

        both = torch.mm(tok, self.proj_t)
        t, n = both.shape
        sim = both.as_strided((t, self.members, self.width), (n, self.width, 1), both.storage_offset())
        if self.top_k == 1:  # softmax over one score is 1: look up the winner's row of the table
            # max().indices, not argmax(): the same first maximum, ~5x faster on this small last dim
            _, rows = torch.max(sim, -1)
            rows += self.offsets  # in place: each member's own rows of the table
            weights = torch.embedding(self.table, rows)
        else:
            if self.top_k >= self.experts:
                coeff = torch.softmax(sim.abs() / self.temperature, dim=-1)
            else:
                top_v, idx = torch.topk(sim.abs(), self.top_k, dim=-1)
                coeff = torch.zeros_like(sim).scatter_(-1, idx, torch.softmax(top_v / self.temperature, dim=-1))
            # [t, members, experts] · table per member: the weights spread over the rank rows
            weights = torch.einsum("tme,mer->tmr", coeff, self.table.view(self.members, -1, self.block))
        return weights.mul_(self.ranks(both))

    def member_hook(self, member: int):
        """The forward hook of one member module: adds its routed LoRA output."""

        def hook(module, args, output):
            return self.add_delta(member, args[0], output)

        return hook

    def add_delta(self, member: int, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        # called once per adapted module per forward: kept to a few tensor calls
        if self._x is not x or self._version != x._version:  # another tensor, or this one changed in place
            tok = x.reshape(-1, x.shape[-1])
            zw = self.weighted(tok if tok.dtype == self.proj.dtype else tok.to(self.proj.dtype))
            self._parts = zw.unbind(1)  # each member's [t, R] view
            self._x, self._version, self._left = x, x._version, self.members
        zw = self._parts[member]
        self._left -= 1
        if self._left == 0:  # every member served: drop the references
            self._x = self._parts = None
        b_t = self.b_ts[member]
        if self._grad_enabled() or output.dtype != self.proj.dtype:
            return output + (zw @ b_t).view(*x.shape[:-1], b_t.shape[1]).to(output.dtype)
        output.view(-1, b_t.shape[1]).addmm_(zw, b_t)  # inference: add in place
        return output


def fused_layers(
    adapters: Sequence[LoraFactors], top_k: int, temperature: float, dtype, device
) -> dict[str, FusedArrowLayer]:
    """Per module adapted by any expert: its fused layer (prototypes exact, as in reuse/arrow.py)."""
    import torch

    from lorareuse_plugin.reuse.prototypes import expert_prototype

    layers = {}
    for module in sorted({m for ad in adapters for m in ad.modules}):
        a_rows, b_cols, owner, protos = [], [], [], []
        in_features = next(ad.modules[module][0].shape[1] for ad in adapters if module in ad.modules)
        for e, ad in enumerate(adapters):
            if module not in ad.modules:
                protos.append(torch.zeros(in_features))
                continue
            a, b = ad.modules[module]
            protos.append(expert_prototype(a, b))
            if protos[-1].any():  # a LoRA of zeros adds nothing: no rank rows for it
                a_rows.append(a)
                b_cols.append(b)
                owner += [e] * a.shape[0]
        if not a_rows:  # every expert's LoRA on this module is zero: nothing to add
            continue
        layers[module] = FusedArrowLayer(
            protos=torch.stack(protos).to(device=device, dtype=dtype),
            a_cat=torch.cat(a_rows).to(device=device, dtype=dtype),
            b_cat=torch.cat(b_cols, dim=1).to(device=device, dtype=dtype),
            owner=torch.tensor(owner, device=device),
            experts=len(adapters),
            top_k=top_k,
            temperature=temperature,
        )
    return layers


def shared_inputs(model, names: Sequence[str]) -> list[list[str]]:
    """``names`` grouped by the input tensor their modules read, from one two-token probe forward
    of ``model`` (in call order); a module the probe does not reach stays alone."""
    import torch

    seen: dict[str, torch.Tensor] = {}

    def recorder(name):
        def record(module, args):
            seen.setdefault(name, args[0])

        return record

    handles = [model.get_submodule(n).register_forward_pre_hook(recorder(n)) for n in names]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(input_ids=torch.zeros(1, 2, dtype=torch.long, device=device))
    except Exception as err:  # equal results either way: only the sharing is lost
        log.warning("arrow: the probe forward failed (%s); every adapted layer routes on its own", err)
        return [[n] for n in names]
    finally:
        for h in handles:
            h.remove()
    by_input: dict[int, list[str]] = {}  # every recorded tensor is held in ``seen``: its id is unique
    for name, x in seen.items():
        by_input.setdefault(id(x), []).append(name)
    return [*by_input.values(), *([n] for n in names if n not in seen)]


def attach(model, layers: dict[str, FusedArrowLayer], group_type: type[FusedArrowGroup] = FusedArrowGroup) -> list:
    """Hook every fused layer onto its linear module of ``model`` (layers reading one input grouped);
    returns the hook handles. ``group_type``: bench P3's floor swaps in a group without routing."""
    handles = []
    for names in shared_inputs(model, sorted(layers)):
        group = group_type([layers[n] for n in names])
        handles += [model.get_submodule(n).register_forward_hook(group.member_hook(i)) for i, n in enumerate(names)]
    return handles
