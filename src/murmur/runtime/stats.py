"""What the runtime counts, per source and in all (``RuntimeStats``; ``murmur status`` reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class SourceCounters:
    events: int = 0
    posts: int = 0
    deletions: int = 0
    quarantined: int = 0
    position: str | None = None
    errors: int = 0
    reconnects: int = 0
    lag_seconds: float | None = None
    last_error: str | None = None
    stopped_by: str | None = None
    """The error that stopped the source, if one did (it no longer delivers until restarted)."""


@dataclass(slots=True)
class RuntimeStats:
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    batches: int = 0
    posts: int = 0
    deletions: int = 0
    quarantined: int = 0
    backfilled: int = 0
    """Posts the firehose tier labelled under overload and the backfill has since upgraded."""
    awaiting_backfill: int | None = None
    """Firehose-labelled posts still waiting for the backfill (None: no backfill in this pipeline,
    or not counted yet)."""
    sources: dict[str, SourceCounters] = field(default_factory=dict)
    interrupted: bool = False
    """Stopped (``stop``: SIGTERM, Ctrl-C) before every source had ended: a file source was not read
    to its end."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "batches": self.batches,
            "posts": self.posts,
            "deletions": self.deletions,
            "quarantined": self.quarantined,
            "backfilled": self.backfilled,
            "awaiting_backfill": self.awaiting_backfill,
            "sources": {
                sid: {
                    "events": c.events,
                    "posts": c.posts,
                    "deletions": c.deletions,
                    "quarantined": c.quarantined,
                    "position": c.position,
                    "errors": c.errors,
                    "reconnects": c.reconnects,
                    "lag_seconds": c.lag_seconds,
                    "last_error": c.last_error,
                    "stopped_by": c.stopped_by,
                }
                for sid, c in self.sources.items()
            },
        }
