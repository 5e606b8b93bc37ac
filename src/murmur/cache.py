"""murmur's cache folder: what a process derives once per machine from shipped files (the e5 ONNX
graphs, a user-chosen model's export, langid.py's tables unpacked) and later processes only read.

Everything in it can be rebuilt from the installed packages, so a file that is missing, unreadable
or from another version is rebuilt, and a folder that cannot be written costs only the time.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """``$MURMUR_CACHE_DIR``, else ``$XDG_CACHE_HOME/murmur``, else ``~/.cache/murmur``."""
    env = os.environ.get("MURMUR_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "murmur"


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
