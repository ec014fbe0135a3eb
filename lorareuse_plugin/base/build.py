"""Build (or reuse) the embedded default base: a tiny Llama pretrained from scratch on our corpus.

The result is a normal HF model dir (``AutoModelForCausalLM``, lm-eval ``hf``, vLLM all load it),
cached under ``<cache>/base/<content hash>`` so the same corpus + size + code gives the same dir.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lorareuse_plugin.base.corpus import CORPUS_VERSION, corpus_lines
from lorareuse_plugin.cache import cache_root
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.io import atomic_dir

BASE_VERSION = 2
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
    # 6 layers: two look-ups in context (person -> country -> capital) within one forward pass;
    # 14 epochs over the 1.6 M-token corpus (~30 min on 2 cores, hence shipped as package data).
    "default": BaseSize(
        "default", hidden=128, layers=6, intermediate=384, vocab=1024, epochs=14, lr=3e-3, block=128, batch=32
    ),
    # a smaller, shorter-trained base for `lorareuse demo --quick` (about half a minute)
    "quick": BaseSize(
        "quick", hidden=128, layers=2, intermediate=256, vocab=1024, epochs=12, lr=5e-3, block=128, batch=16
    ),
    "test": BaseSize("test", hidden=64, layers=2, intermediate=128, vocab=512, epochs=1, lr=5e-3, block=128, batch=16),
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


# The default base takes longer to pretrain than a demo should wait, so its build ships inside the
# package (weights, tokenizer, marker with recipe and corpus hash; the corpus text is regenerated).
SHIPPED = Path(__file__).resolve().parent / "shipped"
WEIGHTS = "model.safetensors"


def shipped_base(size: BaseSize, log=None) -> tuple[Path, dict] | None:
    """The shipped build of ``size`` if it was built from exactly the current corpus and recipe
    (its key matches) and its weights match their hash; None when none is shipped or it is stale."""
    from lorareuse_plugin.io import file_sha256

    path = SHIPPED / size.name
    info = read_base_info(path)
    if info is None:
        return None
    if info.get("key") != base_key(size):
        if log:
            log(
                f"the shipped {size.name} base was built from another corpus or recipe: "
                "pretraining a new one from scratch (see README for the time)"
            )
        return None
    if file_sha256(path / WEIGHTS) != info.get("weights_sha256"):
        raise ConfigError(
            f"the shipped base {path / WEIGHTS} does not match its recorded sha256: reinstall lorareuse, "
            "or rebuild with `lorareuse base build --force`"
        )
    return path, info


def ship(built: Path, size_name: str = "default") -> Path:
    """Copy a finished build into the package as the shipped base (developer tool: `make ship-base`)."""
    import shutil

    from lorareuse_plugin.io import file_sha256

    size = get_size(size_name)
    info = read_base_info(built)
    if not info or info.get("key") != base_key(size):
        raise ConfigError(f"{built} is not a current {size_name} build: run `lorareuse base build --force` first")
    info = {**info, "weights_sha256": file_sha256(built / WEIGHTS), "shipped": True}
    with atomic_dir(SHIPPED / size.name, MARKER) as tmp:
        for f in sorted(built.iterdir()):
            if f.is_file() and f.name not in (CORPUS_FILE, MARKER):
                shutil.copy2(f, tmp / f.name)
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        tmp.chmod(0o755)  # package data: readable by everyone, like the rest of the package
        for f in tmp.iterdir():
            f.chmod(0o644)
    return SHIPPED / size.name


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


def probe_line(model, tok, epoch: int, epochs: int, loss: float) -> str:
    """A quick look at the two procedures the controls need, on 48 items each."""
    from lorareuse_plugin.base.controls import held_out_docs
    from lorareuse_plugin.base.evaluate import correct_answers
    from lorareuse_plugin.data.build import build_dataset, make_spec

    chain, _ = correct_answers(model, tok, held_out_docs()[:48], form="cot")
    context, _ = correct_answers(model, tok, build_dataset(make_spec("twohop", "F")).splits["test"][:48], form="ctx")
    return (
        f"epoch {epoch}/{epochs}: loss {loss:.3f}, held-out chain {sum(chain) / 48:.2f}, "
        f"in-context F {sum(context) / 48:.2f} (48 items each)"
    )


def build_base(
    size_name: str = "default", *, force: bool = False, progress: bool = True, out: Path | None = None
) -> tuple[Path, dict]:
    """Return (model dir, info); trains only if no finished build with the same key exists."""
    size = get_size(size_name)
    if out is None and not force:
        shipped = shipped_base(size, log=lambda m: print(f"lorareuse: {m}", file=sys.stderr))
        if shipped:
            return shipped
    path = Path(out) if out else base_dir(size)
    info = read_base_info(path)
    if info and info.get("key") == base_key(size) and not force:
        return path, info

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lorareuse_plugin.base.controls import base_controls
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
    every = max(1, size.epochs // 4)
    loss = fit(
        model,
        lambda e: _packed_batches(tok, lines, size, e),
        epochs=size.epochs,
        steps_per_epoch=steps,
        lr=size.lr,
        weight_decay=0.01,
        desc=f"pretraining base ({size.name})",
        progress=progress,
        on_epoch_end=lambda e, loss: probe_line(model, tok, e, size.epochs, loss) if e % every == 0 else None,
    )
    train_seconds = time.time() - started
    report = sanity_report(model, tok)
    controls = base_controls(model, tok)
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
        "controls": [c.to_json() for c in controls],
    }
    with atomic_dir(path, MARKER) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / CORPUS_FILE).write_text("\n".join(lines) + "\n")
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    return path, info
