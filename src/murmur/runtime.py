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
import functools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import orjson
import threadpoolctl

from murmur.enrich.base import ComponentTiming, Pipeline
from murmur.errors import PayloadError
from murmur.privacy import PrivacyGate
from murmur.privacy.pseudonym import PeriodSecret
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
        """Up to ``max_items`` events: what is queued now, else what arrives within ``wait_seconds``
        of the first one (``wait_seconds <= 0``: only what is queued now)."""
        items: list[RawEvent] = []
        deadline = time.monotonic() + wait_seconds
        while len(items) < max_items:
            try:
                items.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
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
    normalized: dict[str, int] = field(default_factory=dict)
    """Events per source that normalized (the rest of the batch's events were quarantined)."""
    quarantined: dict[str, int] = field(default_factory=dict)
    timings: dict[str, ComponentTiming] = field(default_factory=dict)


class Processor:
    """The middle of the flow: raw events to storable rows. Pure but for the gate's secrets, so it
    can run in worker processes (``WorkerSetup``) as well as in the runtime's own."""

    def __init__(self, gate: PrivacyGate, pipeline: Pipeline | None = None) -> None:
        self.gate = gate
        self.pipeline = pipeline

    def process(self, events: Sequence[RawEvent], *, now: datetime | None = None) -> Processed:
        now = now or datetime.now(UTC)
        drafts: list[Draft] = []
        out = Processed([], [], [], {})
        for ev in events:
            out.cursors[ev.source_id] = ev.position
            try:
                items = normalize(ev.format, ev.payload)
            except PayloadError as exc:
                out.quarantine.append(_quarantine(ev, exc.reason, exc.field))
                out.quarantined[ev.source_id] = out.quarantined.get(ev.source_id, 0) + 1
                continue
            except Exception as exc:  # a normalizer bug must not stop the stream
                log.exception("normalizer %s failed on %s at %s", ev.format, ev.source_id, ev.position)
                reason = f"internal normalizer error: {type(exc).__name__}: {exc}"
                out.quarantine.append(_quarantine(ev, reason, None))
                out.quarantined[ev.source_id] = out.quarantined.get(ev.source_id, 0) + 1
                continue
            for item in items:
                if isinstance(item, Deletion):
                    out.deletions.append(self.gate.delete(item, now=now))
                else:
                    drafts.append(item)
            out.normalized[ev.source_id] = out.normalized.get(ev.source_id, 0) + 1
        for draft in drafts:
            try:
                out.posts.append(self.gate.apply(draft, now=now))
            except Exception as exc:  # same rule: quarantine, never stop
                log.exception("privacy gate failed on a %s post", draft.platform)
                out.quarantine.append(
                    QuarantineRecord.of(
                        source_id=draft.platform,
                        format="gate",
                        position="(privacy gate)",
                        reason=f"privacy gate error: {type(exc).__name__}: {exc}",
                        field=None,
                        payload=b"",
                    )
                )
        if self.pipeline is not None:
            self.pipeline.process(out.posts)
            out.timings = dict(self.pipeline.timings)
            self.pipeline.timings.clear()
        return out


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


# --- worker processes ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """How a worker process builds its own ``Processor``: the gate's public-accounts list and period,
    and a picklable factory for the *stateless* part of the pipeline. The secrets never come from
    the key file in a worker: the runtime hands over the current ones with every batch."""

    workers: int
    public_accounts: tuple[str, ...]
    period_days: int
    pipeline_factory: Callable[[], Pipeline | None]


_worker_processor: Processor | None = None


def _init_worker(setup: WorkerSetup, parent: int) -> None:
    global _worker_processor  # one processor per worker process, built once
    _exit_with_parent(parent)
    # The parallelism is the processes: one math thread each, or they fight over the cores.
    threadpoolctl.threadpool_limits(1)
    pipeline = setup.pipeline_factory()
    stateless = pipeline.split()[0] if pipeline is not None else None
    gate = PrivacyGate(key_file=None, period_days=setup.period_days, public_accounts=setup.public_accounts)
    _worker_processor = Processor(gate, stateless)
    if stateless is not None:  # load lazily-loaded models now, not inside the first batch
        stateless.process([_warmup_post()])
        stateless.timings.clear()


def _exit_with_parent(parent: int) -> None:
    """A worker whose runtime was killed (``kill -9``) would wait on its task queue forever: the
    sibling workers keep the queue's pipe open. So each worker leaves when its parent is gone, also
    when that happened while the worker was still starting (``parent`` is the runtime's pid)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="murmur-parent-watch", daemon=True).start()


def _warmup_post() -> Post:
    now = datetime.now(UTC)
    return Post(
        platform="file",
        post_id="warmup",
        created_at=now,
        ingested_at=now,
        author_key="warmup",
        text="Warming up the models: bonjour, guten Tag, こんにちは, مرحبا #warmup",
    )


def _process_in_worker(events: list[RawEvent], secret: PeriodSecret, now: datetime) -> Processed:
    assert _worker_processor is not None, "worker not initialised"
    _worker_processor.gate.pseudonyms.use(secret)
    return _worker_processor.process(events, now=now)


class Runtime:
    """Runs sources until they end (files, replays) or ``stop`` is set (SIGTERM), storing as it goes.

    Batches are processed in order of arrival and written in that order, one transaction each. With
    ``workers`` (a ``WorkerSetup`` with ``workers >= 2``) the stateless part of the work (normalize,
    gate, stateless enrichment) runs in that many processes at once, while the runtime's own process
    runs the stateful components (near-duplicates) and the one writer, still in arrival order.
    """

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
        workers: WorkerSetup | None = None,
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.processor = processor
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.hooks = list(hooks)
        self.status_file = status_file
        self.on_batch = on_batch
        self.workers = workers if workers is not None and workers.workers >= 2 else None
        self.stats = RuntimeStats()
        self.timings: dict[str, ComponentTiming] = {}
        self.handoff = QueueHandoff(maxsize=max(4 * batch_size, 1000))
        self._local = ThreadPoolExecutor(1, thread_name_prefix="murmur-process")
        self.ordered: Pipeline | None = None
        if self.workers is not None and processor.pipeline is not None:
            self.ordered = processor.pipeline.split()[1]

    async def _pump(self, source: Source) -> None:
        cursor = self.store.cursor(source.id)
        counters = self.stats.sources.setdefault(source.id, SourceCounters(position=cursor))
        async for event in source.events(cursor):
            await self.handoff.put(event)
            counters.lag_seconds = source.stats.lag_seconds
            counters.errors = source.stats.errors
            counters.reconnects = source.stats.reconnects
            counters.last_error = source.stats.last_error

    def _submit(self, events: list[RawEvent], pool: ProcessPoolExecutor | None) -> asyncio.Future[Processed]:
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        if pool is None:
            # One thread: batches are processed one after another (stateful components, key file).
            work = functools.partial(self.processor.process, events, now=now)
            return loop.run_in_executor(self._local, work)
        secret = self.processor.gate.pseudonyms.current(now)  # rotates the key file here, only here
        return loop.run_in_executor(pool, _process_in_worker, events, secret, now)

    def _finish(self, out: Processed) -> None:
        """In the runtime's process, in arrival order: stateful components, then the write."""
        if self.ordered is not None and self.ordered.components:
            self.ordered.process(out.posts)
            for name, t in self.ordered.timings.items():
                out.timings[name] = t
            self.ordered.timings = {}
        write_processed(self.store, out, self.hooks)

    def _account(self, out: Processed) -> None:
        stats = self.stats
        stats.batches += 1
        stats.posts += len(out.posts)
        stats.deletions += len(out.deletions)
        stats.quarantined += len(out.quarantine)
        for sid, n in out.normalized.items():
            stats.sources.setdefault(sid, SourceCounters()).events += n
        for sid, n in out.quarantined.items():
            stats.sources.setdefault(sid, SourceCounters()).quarantined += n
        for sid, pos in out.cursors.items():
            stats.sources.setdefault(sid, SourceCounters()).position = pos
        for name, t in out.timings.items():
            mine = self.timings.setdefault(name, ComponentTiming())
            mine.posts += t.posts
            mine.seconds += t.seconds
        if self.on_batch:
            self.on_batch(stats)
        self._write_status()

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.stats.as_dict(), option=orjson.OPT_INDENT_2))
        tmp.replace(self.status_file)

    async def _writer(self, inflight: asyncio.Queue[asyncio.Future[Processed] | None]) -> None:
        while (future := await inflight.get()) is not None:
            out = await future
            await asyncio.to_thread(self._finish, out)
            self._account(out)

    async def run(self, stop: asyncio.Event | None = None) -> RuntimeStats:
        stop = stop or asyncio.Event()
        pool: ProcessPoolExecutor | None = None
        if self.workers is not None:
            pool = ProcessPoolExecutor(
                self.workers.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.workers, os.getpid()),
            )
        depth = 2 * self.workers.workers if self.workers is not None else 1
        inflight: asyncio.Queue[asyncio.Future[Processed] | None] = asyncio.Queue(depth)
        writer = asyncio.create_task(self._writer(inflight))
        pumps = [asyncio.create_task(self._pump(s), name=f"source:{s.id}") for s in self.sources]
        try:
            while not writer.done():
                events = await self.handoff.take(self.batch_size, self.flush_seconds)
                if events:
                    await inflight.put(self._submit(events, pool))
                if stop.is_set():
                    break
                if all(p.done() for p in pumps) and self.handoff.empty():
                    for p in pumps:
                        if not p.cancelled() and p.exception() is not None:
                            log.error("source %s stopped: %s", p.get_name(), p.exception())
                    break
        finally:
            for p in pumps:
                p.cancel()
            for p in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await p
            # Whatever already sits in the hand-off is stored before we leave (cursors included).
            try:
                while not writer.done() and not self.handoff.empty():
                    events = await self.handoff.take(self.batch_size, 0)
                    if events:
                        await inflight.put(self._submit(events, pool))
                if not writer.done():
                    await inflight.put(None)
                await writer
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
                self._local.shutdown(wait=False)
                self._write_status()
        return self.stats
