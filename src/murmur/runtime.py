"""Wires sources → normalize → privacy gate → enrichment → store, and owns the checkpoints.

::

    source tasks ─RawEvent─▶ hand-off ─▶ batcher ─▶ normalize ─▶ gate ─▶ pipeline ─▶ store.write
    (one per source)         (bounded:   (size or   (PayloadError →                  (cursors in the
                              back-       interval)   quarantine with reason)          same transaction)
                              pressure)

The hand-off between the sources and the processing stage is one narrow interface (``Handoff``):
an in-process bounded queue now, a durable message bus when murmur scales out.

Delivery is at-least-once from source to store with idempotent writes: a source's cursor is
committed in the same transaction as the posts it produced, so after a crash the source resumes from
the last durable position and replays at most one batch, which upserts to the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import orjson

from murmur.enrich.base import Pipeline
from murmur.errors import PayloadError
from murmur.privacy import PrivacyGate
from murmur.sources.base import Source
from murmur.sources.normalize import normalize
from murmur.store import QuarantineRecord, Store
from murmur.types import Deletion, Draft, Post, RawEvent

log = logging.getLogger(__name__)

BatchHook = Callable[[Sequence[Post]], Callable[[duckdb.DuckDBPyConnection], None] | None]
"""Called with each stored batch's posts; may return a writer run inside the batch's transaction
(e.g. the query layer's token index and live monitor matches)."""


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


@dataclass(slots=True)
class RuntimeStats:
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    batches: int = 0
    posts: int = 0
    deletions: int = 0
    quarantined: int = 0
    sources: dict[str, SourceCounters] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "batches": self.batches,
            "posts": self.posts,
            "deletions": self.deletions,
            "quarantined": self.quarantined,
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
                }
                for sid, c in self.sources.items()
            },
        }


class Handoff(Protocol):
    """The narrow seam between sources and processing (a queue now, a message bus later)."""

    async def put(self, event: RawEvent) -> None: ...

    async def take(self, max_items: int, wait_seconds: float) -> list[RawEvent]: ...


class QueueHandoff:
    """In-process bounded queue: a slow store slows the sources down instead of growing memory."""

    def __init__(self, maxsize: int = 20_000) -> None:
        self._queue: asyncio.Queue[RawEvent] = asyncio.Queue(maxsize)

    async def put(self, event: RawEvent) -> None:
        await self._queue.put(event)

    async def take(self, max_items: int, wait_seconds: float) -> list[RawEvent]:
        items: list[RawEvent] = []
        try:
            items.append(await asyncio.wait_for(self._queue.get(), wait_seconds))
        except TimeoutError:
            return items
        deadline = time.monotonic() + wait_seconds
        while len(items) < max_items:
            try:
                items.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
        return items

    def empty(self) -> bool:
        return self._queue.empty()


@dataclass(slots=True)
class Processed:
    posts: list[Post]
    deletions: list[Deletion]
    quarantine: list[QuarantineRecord]
    cursors: dict[str, str]


class Processor:
    """The synchronous middle: raw events to storable rows. Pure apart from the gate's key file."""

    def __init__(self, gate: PrivacyGate, pipeline: Pipeline | None = None) -> None:
        self.gate = gate
        self.pipeline = pipeline

    def process(self, events: Sequence[RawEvent], stats: RuntimeStats | None = None) -> Processed:
        now = datetime.now(UTC)
        drafts: list[Draft] = []
        deletions: list[Deletion] = []
        quarantine: list[QuarantineRecord] = []
        cursors: dict[str, str] = {}
        for ev in events:
            cursors[ev.source_id] = ev.position
            counters = stats.sources.setdefault(ev.source_id, SourceCounters()) if stats else None
            try:
                items = normalize(ev.format, ev.payload)
            except PayloadError as exc:
                quarantine.append(_quarantine(ev, exc.reason, exc.field))
                if counters:
                    counters.quarantined += 1
                continue
            except Exception as exc:
                log.exception("normalizer %s failed on %s at %s", ev.format, ev.source_id, ev.position)
                quarantine.append(
                    _quarantine(ev, f"internal normalizer error: {type(exc).__name__}: {exc}", None)
                )
                if counters:
                    counters.quarantined += 1
                continue
            for item in items:
                if isinstance(item, Deletion):
                    deletions.append(self.gate.delete(item, now=now))
                else:
                    drafts.append(item)
            if counters:
                counters.events += 1
        posts: list[Post] = []
        for draft in drafts:
            try:
                posts.append(self.gate.apply(draft, now=now))
            except Exception as exc:
                log.exception("privacy gate failed on %s/%s", draft.platform, draft.post_id)
                quarantine.append(
                    QuarantineRecord.of(
                        source_id=draft.platform,
                        format="gate",
                        position=draft.post_id,
                        reason=f"privacy gate error: {type(exc).__name__}: {exc}",
                        field=None,
                        payload=draft.post_id.encode(),
                    )
                )
        if self.pipeline is not None:
            self.pipeline.process(posts)
        return Processed(posts, deletions, quarantine, cursors)


def _quarantine(ev: RawEvent, reason: str, field_name: str | None) -> QuarantineRecord:
    return QuarantineRecord.of(
        source_id=ev.source_id,
        format=ev.format,
        position=ev.position,
        reason=reason,
        field=field_name,
        payload=ev.payload,
    )


def write_processed(store: Store, out: Processed, hooks: Sequence[BatchHook] = ()) -> None:
    embeddings = [(p.platform, p.post_id, list(p.embedding)) for p in out.posts if p.embedding is not None]
    extras = [w for w in (hook(out.posts) for hook in hooks) if w is not None]
    store.write(
        posts=out.posts,
        deletions=out.deletions,
        quarantine=out.quarantine,
        cursors=out.cursors,
        embeddings=embeddings,
        extras=extras,
    )


class Runtime:
    """Runs sources until they end (files, replays) or ``stop`` is set (SIGTERM), storing as it goes."""

    def __init__(
        self,
        store: Store,
        sources: Sequence[Source],
        processor: Processor,
        *,
        batch_size: int = 2000,
        flush_seconds: float = 0.25,
        hooks: Sequence[BatchHook] = (),
        status_file: Path | None = None,
        on_batch: Callable[[RuntimeStats], None] | None = None,
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.processor = processor
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.hooks = list(hooks)
        self.status_file = status_file
        self.on_batch = on_batch
        self.stats = RuntimeStats()
        self.handoff = QueueHandoff(maxsize=max(4 * batch_size, 1000))

    async def _pump(self, source: Source) -> None:
        cursor = self.store.cursor(source.id)
        counters = self.stats.sources.setdefault(source.id, SourceCounters(position=cursor))
        async for event in source.events(cursor):
            await self.handoff.put(event)
            counters.lag_seconds = source.stats.lag_seconds
            counters.errors = source.stats.errors
            counters.reconnects = source.stats.reconnects
            counters.last_error = source.stats.last_error

    async def _drain_once(self) -> int:
        events = await self.handoff.take(self.batch_size, self.flush_seconds)
        if not events:
            return 0
        out = await asyncio.to_thread(self.processor.process, events, self.stats)
        await asyncio.to_thread(write_processed, self.store, out, self.hooks)
        self.stats.batches += 1
        self.stats.posts += len(out.posts)
        self.stats.deletions += len(out.deletions)
        self.stats.quarantined += len(out.quarantine)
        for post in out.posts:
            self.stats.sources.setdefault(post.platform, SourceCounters())
        for sid, pos in out.cursors.items():
            self.stats.sources.setdefault(sid, SourceCounters()).position = pos
        if self.on_batch:
            self.on_batch(self.stats)
        self._write_status()
        return len(events)

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.stats.as_dict(), option=orjson.OPT_INDENT_2))
        tmp.replace(self.status_file)

    async def run(self, stop: asyncio.Event | None = None) -> RuntimeStats:
        stop = stop or asyncio.Event()
        pumps = [asyncio.create_task(self._pump(s), name=f"source:{s.id}") for s in self.sources]
        stopper = asyncio.create_task(stop.wait())
        try:
            while True:
                await self._drain_once()
                if stop.is_set():
                    break
                if all(p.done() for p in pumps) and self.handoff.empty():
                    for p in pumps:
                        if p.exception() is not None:
                            log.error("source %s stopped: %s", p.get_name(), p.exception())
                    break
        finally:
            for p in pumps:
                p.cancel()
            stopper.cancel()
            for p in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await p
            # Whatever already sits in the hand-off is stored before we leave (cursors included).
            while not self.handoff.empty():
                await self._drain_once()
            self._write_status()
        return self.stats
