"""Write-then-rename helpers: a reader sees the old state or the new one, never half of one."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lorareuse_plugin.errors import ConfigError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def sweep_stale(parent: Path, name: str) -> None:
    """Remove ``.<name>.tmp-<pid>-*`` / ``.<name>.old-<pid>`` siblings left by a writer that was killed
    (its pid is gone); a live writer's temp files are left alone."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(?:tmp|old)-(\d+)(?:-.*)?$")
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or _alive(int(m[1])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


def check_out_dir(out: Path, marker: str | None) -> Path:
    """Refuse an ``out`` that :func:`atomic_dir` would refuse, before any work is done; return it resolved."""
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} is a file: pass a directory path")
    if marker and out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise ConfigError(f"output directory {out} is not empty and holds no {marker}: pass a new or empty directory")
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write to {out}: {existing} is not a writable directory; pass a writable --out")
    return out


@contextlib.contextmanager
def atomic_dir(out: Path, marker: str | None) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to fill; on success it replaces ``out`` in two renames.

    ``out`` may be missing, empty, or an earlier output of the same kind (it contains ``marker``);
    anything else is refused so we never delete a user's unrelated files. ``marker=None`` is for
    folders we own outright (an expert inside a library): whatever is there gets replaced. Temp
    names carry the writer's pid, so leftovers of a killed writer are swept by the next one.
    """
    out = check_out_dir(out, marker)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(parent, out.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=parent))
    except OSError as e:
        raise ConfigError(f"cannot write to {parent}: {e.strerror}; pass a writable --out") from None
    try:
        yield tmp
        old = None
        if out.exists():
            old = parent / f".{out.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old, ignore_errors=True)
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
    sweep_stale(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
