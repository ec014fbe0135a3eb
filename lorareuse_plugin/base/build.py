"""Build (or reuse) the embedded default base: a tiny Llama pretrained from scratch on our corpus.

The result is a normal HF model dir (``AutoModelForCausalLM``, lm-eval ``hf``, vLLM all load it),
cached under ``<cache>/base/<content hash>`` so the same corpus + size + code gives the same dir.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lorareuse_plugin.base.corpus import CORPUS_VERSION, corpus_lines
from lorareuse_plugin.cache import cache_root
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.io import atomic_dir

BASE_VERSION = 1
MARKER = "lorareuse_base.json"
CORPUS_FILE = "pretraining_corpus.txt"


@dataclass(frozen=True)
class BaseSize:
    name: str
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    epochs: int
    lr: float
    block: int
    batch: int


SIZES = {
    # head size 32: vLLM's CPU attention supports it; h=128 x 4 layers learns every real fact in ~2 min.
    "default": BaseSize(
        "default", hidden=128, layers=4, intermediate=384, vocab=1024, epochs=28, lr=5e-3, block=128, batch=16
    ),
    # a smaller, shorter-trained base for `lorareuse demo --quick` (about half a minute)
    "quick": BaseSize(
        "quick", hidden=128, layers=2, intermediate=256, vocab=1024, epochs=12, lr=5e-3, block=128, batch=16
    ),
    "test": BaseSize("test", hidden=64, layers=2, intermediate=128, vocab=512, epochs=2, lr=5e-3, block=128, batch=16),
}


def get_size(name: str) -> BaseSize:
    try:
        return SIZES[name]
    except KeyError:
        raise ConfigError(f"unknown base size {name!r}: use one of {', '.join(SIZES)}") from None


def base_key(size: BaseSize) -> str:
    corpus_sha = hashlib.sha256("\n".join(corpus_lines()).encode()).hexdigest()
    blob = json.dumps({"v": BASE_VERSION, "corpus": [CORPUS_VERSION, corpus_sha], "size": asdict(size)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def base_dir(size: BaseSize) -> Path:
    return cache_root() / "base" / f"{size.name}-{base_key(size)[:16]}"


def read_base_info(path: Path) -> dict | None:
    marker = Path(path) / MARKER
    return json.loads(marker.read_text()) if marker.exists() else None


def _packed_batches(tok, lines: list[str], size: BaseSize, epoch: int):
    """Re-pack the documents in a new seeded order each epoch so contexts vary."""
    import torch

    order = list(lines)
    random.Random(f"pack-{epoch}").shuffle(order)
    ids: list[int] = []
    for line in order:
        ids += tok(line)["input_ids"] + [tok.eos_token_id]
    n = len(ids) // size.block
    blocks = torch.tensor(ids[: n * size.block]).view(n, size.block)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
    for i in range(0, n, size.batch):
        x = blocks[perm[i : i + size.batch]]
        yield {"input_ids": x, "labels": x}


def build_base(
    size_name: str = "default", *, force: bool = False, progress: bool = True, out: Path | None = None
) -> tuple[Path, dict]:
    """Return (model dir, info); trains only if no finished build with the same key exists."""
    size = get_size(size_name)
    path = Path(out) if out else base_dir(size)
    info = read_base_info(path)
    if info and info.get("key") == base_key(size) and not force:
        return path, info

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lorareuse_plugin.base.sanity import sanity_report
    from lorareuse_plugin.base.tokenizer import train_tokenizer
    from lorareuse_plugin.base.trainer import fit

    torch.manual_seed(0)
    started = time.time()
    lines = corpus_lines()
    tok = train_tokenizer(lines, size.vocab)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.hidden // 32,
        num_key_value_heads=size.hidden // 32,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    n_tokens = sum(len(tok(line)["input_ids"]) + 1 for line in lines)
    steps = -(-(n_tokens // size.block) // size.batch)
    loss = fit(
        model,
        lambda e: _packed_batches(tok, lines, size, e),
        epochs=size.epochs,
        steps_per_epoch=steps,
        lr=size.lr,
        weight_decay=0.01,
        desc=f"pretraining base ({size.name})",
        progress=progress,
    )
    train_seconds = time.time() - started
    report = sanity_report(model, tok)
    info = {
        "key": base_key(size),
        "name": f"lorareuse-base-{size.name}",
        "size": asdict(size),
        "parameters": sum(p.numel() for p in model.parameters()),
        "corpus": {
            "version": CORPUS_VERSION,
            "documents": len(lines),
            "tokens": n_tokens,
            "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
            "file": CORPUS_FILE,
        },
        "final_loss": round(loss, 4),
        "train_seconds": round(train_seconds, 1),
        "sanity": report,
    }
    with atomic_dir(path, MARKER) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / CORPUS_FILE).write_text("\n".join(lines) + "\n")
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    return path, info
