"""Helpers shipped with the library for tests and benchmarks: where the shared real data lives,
and small fakes (list sources, fixed clocks)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

from murmur.types import RawEvent

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """The read-only folder of real data and docs (``../shared`` beside the repository), or the
    folder named by ``MURMUR_SHARED``."""
    env = os.environ.get("MURMUR_SHARED")
    return Path(env) if env else (REPO_ROOT.parent / "shared").resolve()


def shared_data(*parts: str) -> Path:
    return shared_dir().joinpath("data", *parts)


def has_shared_data() -> bool:
    return shared_data("README.md").exists()


class ListSource:
    """A finite source over a list of payloads: position = index of the event (1-based)."""

    def __init__(self, source_id: str, fmt: str, payloads: list[bytes]) -> None:
        from murmur.sources.base import SourceStats

        self.id = source_id
        self.format = fmt
        self.payloads = payloads
        self.stats = SourceStats()

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        start = int(cursor) if cursor else 0
        for i in range(start, len(self.payloads)):
            self.stats.events += 1
            yield RawEvent(self.id, self.format, self.payloads[i], str(i + 1))
