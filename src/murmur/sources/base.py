"""What every source is: an async stream of raw payloads with a resumable cursor.

A source never parses posts (normalizers do) and never writes anything (the runtime does). It
yields ``RawEvent``s whose ``position`` is the cursor to resume from *after* that event; the runtime
commits that position in the same transaction as the posts it produced, then a restarted source
receives it back through ``events(cursor)``.

Every source reconnects on its own with exponential backoff and jitter, honours the platform's
rate limits, and counts what it sees in ``stats`` (the runtime reports them as metrics).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from murmur.config import SourceConfig
from murmur.registry import Registry
from murmur.types import RawEvent


@dataclass(slots=True)
class SourceStats:
    """Counters a source keeps about itself; read by the runtime for lag and error metrics."""

    events: int = 0
    reconnects: int = 0
    errors: int = 0
    last_error: str | None = None
    lag_seconds: float | None = None
    """How far behind the platform's present the last event was, when the platform says."""
    extra: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """A resumable stream of raw payloads from one platform endpoint."""

    id: str
    stats: SourceStats

    def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """Yield raw events from ``cursor`` on (None: from the source's default start) until the
        stream ends (files, finite replays) or the task is cancelled (live streams)."""
        ...


SourceFactory = Callable[[SourceConfig], Source]

SOURCES: Registry[SourceFactory] = Registry("source type")
