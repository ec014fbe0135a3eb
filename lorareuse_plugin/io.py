"""Write-then-rename helpers: a reader sees the old state or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lorareuse_plugin.errors import ConfigError


@contextlib.contextmanager
def atomic_dir(out: Path, marker: str | None) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to fill; on success it replaces ``out`` in two renames.

    ``out`` may be missing, empty, or an earlier output of the same kind (it contains ``marker``);
    anything else is refused so we never delete a user's unrelated files. ``marker=None`` is for
    folders we own outright (an expert inside a library): whatever is there gets replaced.
    """
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} is a file: pass a directory path")
    if marker and out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise ConfigError(f"output directory {out} is not empty and holds no {marker}: pass a new or empty directory")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    except OSError as e:
        raise ConfigError(f"cannot write to {parent}: {e.strerror}; pass a writable --out") from None
    try:
        yield tmp
        old = None
        if out.exists():
            old = parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace one file atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
