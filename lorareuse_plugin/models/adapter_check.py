"""Prove adapters changed the output (lm-eval once dropped LoRAs silently, lm-eval#2432).

The probe prompts come from the library's own data (each chosen expert's probe questions) when we
built it; foreign adapters get a fixed set of neutral prompts that depend on no world of ours. An
all-zero adapter fails on either set.
"""

from __future__ import annotations

from lorareuse_plugin.errors import ConfigError, LibraryError

MIN_CHANGE = 1e-6


def check_wanted(value) -> bool:
    """``check_adapters=`` from model_args (a string there) or Python (a bool)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"check_adapters={value!r} is not a boolean: use check_adapters=true or check_adapters=false")


# short, world-independent prompts of several kinds: any adapter that changes the model at all
# changes the next-token logits of some of them
NEUTRAL_PROMPTS = (
    "Q: What is the capital of France?\nA:",
    "The weather today is",
    "Q: A farmer has 3 crates with 4 apples each. How many apples does the farmer have?\nA:",
    "Once upon a time, there was a",
    "def add(a, b):\n    return",
    "Translate to German: good morning\n",
)


def probe_prompts(spec, per_expert: int = 2) -> list[str]:
    if not spec.library.has_world:
        return list(NEUTRAL_PROMPTS)
    ds = spec.library.dataset()
    prompts = [d["prompt"] for d in ds.splits["test"][:per_expert]]
    for expert in spec.experts:
        split = spec.library.manifest["experts"][expert]["split"]
        probe = f"probe_{split}" if f"probe_{split}" in ds.splits else "probe_target"
        prompts += [d["prompt"] for d in ds.splits[probe][:per_expert]]
    return list(dict.fromkeys(prompts))


def last_logits(model, tok, prompts: list[str]):
    import torch

    rows = []
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt")["input_ids"].to(next(model.parameters()).device)
            rows.append(model(input_ids=ids).logits[0, -1].float().cpu())
    return torch.stack(rows)


def assert_changed(before, after, what: str) -> float:
    change = float((after - before).abs().max())
    if not change > MIN_CHANGE:
        raise LibraryError(
            f"{what} did not change the model's output on probe prompts (max |Δlogit| = "
            f"{change:.1e}): the adapter is all-zero or was not applied"
        )
    return change
