"""murmur's cache folder: what a process derives once per machine from shipped files (the e5 ONNX
graphs, a user-chosen model's export, langid.py's tables unpacked, the lexical model's tables) and
later processes only read (the arrays memory-mapped: ``mapped_arrays``).

Everything in it can be rebuilt from the installed packages, so a file that is missing, unreadable
or from another version is rebuilt, and a folder that cannot be written costs only the time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """``$MURMUR_CACHE_DIR``, else ``$XDG_CACHE_HOME/murmur``, else ``~/.cache/murmur``."""
    env = os.environ.get("MURMUR_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "murmur"


def file_digest(path: Path, salt: str) -> str:
    """What a cached derivative is keyed by: SHA-256 of ``salt`` (the recipe or format version) and
    the shipped file's bytes, read in chunks; 16 hex digits."""
    h = hashlib.sha256(salt.encode())
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write, moved onto ``target`` when the block ends without
    an error (so a reader never sees half a file, and two writers at once leave one whole file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


Arrays = dict[str, npt.NDArray[Any]]

_MANIFEST = "arrays.json"


def mapped_arrays(
    stem: str, digest: str, build: Callable[[], Mapping[str, npt.NDArray[Any]]], cache_dir: Path | None = None
) -> Arrays:
    """``build()``'s arrays, kept in the cache folder (``cache_dir``, default ``cache_root()``) as
    one ``.npy`` file each under ``{stem}-{digest}/`` and read back memory-mapped, read-only: a
    process that starts then pays no unpacking and no copy, and the processes of one machine
    (``murmur run``'s workers) share one copy of the pages. ``digest`` names what the arrays were
    derived from (a shipped file's hash and the format's version).

    A folder is published whole (written beside it, then renamed), so a reader never sees part of
    one; one that is missing, unreadable or incomplete is built again (the damaged one moved aside
    and deleted, never rewritten in place: a file cut short under a process that maps it faults
    that process, SIGBUS, so nothing may edit these files in place). An unwritable folder only
    costs the time: the arrays are then built in memory each time."""
    target = (cache_dir or cache_root()) / f"{stem}-{digest}"
    try:
        return _read_arrays(target)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    arrays = {name: np.asarray(a) for name, a in build().items()}
    try:
        _publish_arrays(target, arrays)
        return _read_arrays(target)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("%s not cached under %s (%s): building it each time", stem, target.parent, exc)
    return arrays


def _read_arrays(folder: Path) -> Arrays:
    names = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    out: Arrays = {}
    for name, (shape, dtype) in names.items():
        a = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        if list(a.shape) != shape or a.dtype.str != dtype:
            msg = f"{folder / name}.npy holds {a.dtype.str} {a.shape}, its manifest says {dtype} {shape}"
            raise ValueError(msg)
        out[name] = np.asarray(a)  # a plain view (ndarray, not np.memmap): no subclass cost per use
    return out


def _publish_arrays(target: Path, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        for name, a in arrays.items():
            np.save(tmp / f"{name}.npy", a, allow_pickle=False)
        manifest = {name: [list(a.shape), a.dtype.str] for name, a in arrays.items()}
        (tmp / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")  # last: marks it whole
        if target.exists():  # damaged: moved aside first (a folder cannot be renamed over another)
            stale = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".stale"))
            target.rename(stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / _MANIFEST).exists():  # not another process's whole copy: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
