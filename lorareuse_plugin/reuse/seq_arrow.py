"""``seq_arrow``: Arrow's data-free prototypes, but one decision per request.

For each expert and LoRA module, v = top right-singular vector of ΔW. A request's score for an
expert is the mean over modules of the mean over prompt tokens of |x·v| (x = the module's input
on the *base* model). The top-k experts are used — one adapter (k=1) or their delta mean with
softmax(score/temperature) weights — so it runs unchanged on vLLM, where adapters are per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorareuse_plugin.errors import ConfigError


@dataclass(frozen=True)
class Params:
    top_k: int = field(default=1, metadata={"help": "experts per request (1..#experts)"})
    temperature: float = field(default=1.0, metadata={"help": "softmax temperature of the top-k mix"})


def check_spec(spec) -> None:
    n = len(spec.experts)
    if not 1 <= spec.params.top_k <= n:
        raise ConfigError(f"{spec.method.name}: top_k={spec.params.top_k} is invalid for {n} experts: use 1..{n}")
    if spec.params.temperature <= 0:
        raise ConfigError(f"{spec.method.name}: temperature={spec.params.temperature} must be > 0")


def mix(scores: dict[str, float], top_k: int, temperature: float) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Top-k experts by score (ties by name) and their softmax weights in whole percents (so mixes
    cache), summing to exactly 1; an expert whose share rounds to 0 % is left out."""
    import math

    ranked = sorted(scores, key=lambda e: (-scores[e], e))[:top_k]
    top = max(scores[e] for e in ranked)
    exps = [math.exp((scores[e] - top) / temperature) for e in ranked]
    shares = [100 * x / sum(exps) for x in exps]
    percents = [math.floor(x) for x in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - percents[i]), i))
    for i in by_remainder[: 100 - sum(percents)]:  # largest remainders get the missing percents
        percents[i] += 1
    kept = [(e, p / 100) for e, p in zip(ranked, percents, strict=True) if p > 0]
    return tuple(e for e, _ in kept), tuple(w for _, w in kept)


class SeqArrowRouter:
    """The top-k experts by prototype score of each document's context (one expert, or a mix)."""

    def __init__(self, scorer, top_k: int, temperature: float) -> None:
        self.scorer, self.top_k, self.temperature = scorer, top_k, temperature

    def routes(self, items):
        from lorareuse_plugin.reuse.router import Route

        return [
            Route(*mix(scores, self.top_k, self.temperature))
            for scores in self.scorer.scores([item.context for item in items])
        ]

    def close(self) -> None:
        self.scorer = None  # frees the base copy the scorer holds (vLLM backend)


def request_router(spec, scorer) -> SeqArrowRouter:
    return SeqArrowRouter(scorer(), spec.params.top_k, spec.params.temperature)


def mixture_rank(ranks: list[int], top_k: int) -> int:
    """The rank of the largest top-k mix (delta means concatenate factors): what a server must hold."""
    return sum(sorted(ranks, reverse=True)[:top_k])


class SeqArrowScorer:
    """Scores prompts against every expert's prototypes on the *base* model.

    ``model`` is any HF causal LM whose modules named like the adapters' (after stripping
    ``prefix``) see the base inputs: a PEFT model inside ``disable_adapter()`` (lorareuse-hf) or a
    plain copy of the base (lorareuse-vllm, which cannot expose hidden states per module). Prompts
    are right-padded so a prompt's score does not depend on what it is batched with; scores are
    cached per prompt.
    """

    def __init__(
        self,
        spec,
        model,
        tokenizer,
        prefix: str = "",
        base_context=None,
        batch_size: int = 16,
        max_length: int | None = None,
    ) -> None:
        import contextlib

        import torch

        from lorareuse_plugin.reuse.lora_io import read_experts
        from lorareuse_plugin.reuse.prototypes import top_right_singular_vector

        self.experts = list(spec.experts)
        self.model, self.tokenizer = model, tokenizer
        self.batch_size = batch_size if tokenizer.pad_token_id is not None else 1
        self.max_length = max_length  # the backend's context window: score what the model will see
        self.base_context = base_context or contextlib.nullcontext
        self.device = next(model.parameters()).device
        adapters = read_experts(spec.library, self.experts)
        # every module any expert adapts; an expert is scored over its own modules only (experts with
        # different targets, e.g. foreign LoRAs, are compared by their mean over what each adapts)
        modules = sorted(set().union(*(set(a.modules) for a in adapters)))
        self.members = {m: [i for i, ad in enumerate(adapters) if m in ad.modules] for m in modules}
        self.prototypes = {
            m: torch.stack([top_right_singular_vector(*adapters[i].modules[m]) for i in self.members[m]]).to(
                self.device
            )
            for m in modules
        }  # module -> [E_m, in]
        self.counts = torch.zeros(len(self.experts))
        for idx in self.members.values():
            self.counts[idx] += 1  # modules per expert
        self.layers = {
            n.removeprefix(prefix): mod for n, mod in model.named_modules() if n.removeprefix(prefix) in self.prototypes
        }
        missing = sorted(set(self.prototypes) - set(self.layers))
        if missing:
            raise ConfigError(
                f"seq_arrow: the base model has no module {missing[0]} that the experts adapt: "
                "the library was built on another architecture"
            )
        self.cache: dict[str, dict[str, float]] = {}

    def scores(self, prompts: list[str]) -> list[dict[str, float]]:
        """One {expert: score} per prompt."""
        import torch

        todo = [p for p in dict.fromkeys(prompts) if p not in self.cache]
        for i in range(0, len(todo), self.batch_size):
            batch = todo[i : i + self.batch_size]
            pad = len(batch) > 1  # a tokenizer without a pad token scores one prompt at a time
            ids = self.tokenizer(batch)["input_ids"]
            if self.max_length:  # lm-eval keeps a context's last max_length tokens
                ids = [x[-self.max_length :] for x in ids]
            enc = self.tokenizer.pad({"input_ids": ids}, padding=pad, padding_side="right", return_tensors="pt").to(
                self.device
            )
            mask = enc["attention_mask"].unsqueeze(-1).float()  # [B, T, 1]
            total = torch.zeros(len(batch), len(self.experts), device=self.device)

            def hook(name: str, total=total, mask=mask):
                idx = self.members[name]

                def fn(_mod, args):
                    s = (args[0].float() @ self.prototypes[name].T).abs()  # [B, T, E_m]
                    total[:, idx] += (s * mask).sum(1) / mask.sum(1)

                return fn

            handles = [layer.register_forward_pre_hook(hook(n)) for n, layer in self.layers.items()]
            try:
                with torch.no_grad(), self.base_context():
                    self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            finally:
                for h in handles:
                    h.remove()
            for p, row in zip(batch, (total / self.counts.to(total.device)).tolist(), strict=True):
                self.cache[p] = dict(zip(self.experts, row, strict=True))
        return [self.cache[p] for p in prompts]
