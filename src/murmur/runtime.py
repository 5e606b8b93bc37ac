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
the last durable position and replays at most one batch, which upserts to the same rows. A worker
process that dies (killed, out of memory, a crash in native code) loses nothing either: the pool is
replaced and the batches it held are tried again, each alone; one a worker dies on twice is
quarantined with that reason and the stream goes on.

Backfill: when the pipeline holds an ``Upgrader`` (the neural tier's ``TieredEnricher``, which labels
with the firehose model what it cannot finish within the alert latency), the runtime upgrades those
posts once the stream has been idle for ``backfill_idle_seconds`` (hand-off empty, nothing in flight):
it reads a chunk of firehose-labelled posts, oldest first, has the components the pipeline already
loaded upgrade them (in the runtime's processing thread, or in a worker process when the upgrader
runs there), and writes them through the same in-order writer as the batches. One chunk at a time,
and only while no input waits, so new posts are never held back by more than one chunk.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import functools
import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

import duckdb
import orjson
import threadpoolctl

from murmur.batch import POST_COLUMNS, PostBatch, posts_from_table
from murmur.enrich.base import ComponentTiming, Pipeline
from murmur.errors import PayloadError
from murmur.privacy import PrivacyGate
from murmur.privacy.pseudonym import PeriodSecret
from murmur.sources.base import Source
from murmur.sources.normalize import normalize
from murmur.store import QuarantineRecord, Store
from murmur.types import Deletion, Draft, Post, RawEvent
from murmur.urls import scrub_secrets

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


class Handoff(Protocol):
    """The narrow seam between sources and processing (a queue now, a message bus later)."""

    async def put(self, event: RawEvent) -> None: ...

    async def take(self, max_items: int, wait_seconds: float) -> list[RawEvent]: ...

    def arrived(self) -> datetime | None:
        """When the oldest event of the last ``take`` arrived (None: it took nothing)."""
        ...


class QueueHandoff:
    """In-process bounded queue: a slow store slows the sources down instead of growing memory.

    A deque and two events rather than ``asyncio.Queue``: at firehose rates the queue's per-item
    bookkeeping (a future per waiting ``get``) cost more than normalizing the post."""

    def __init__(self, maxsize: int = 20_000) -> None:
        self._items: collections.deque[RawEvent] = collections.deque()
        self._arrivals: collections.deque[float] = collections.deque()
        """``time.time()`` at each item's ``put``: a post's age counts from here, not from when its
        batch was taken (it may wait here while the batch before it is enriched)."""
        self._taken_arrival: float | None = None
        self._maxsize = maxsize
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()

    async def put(self, event: RawEvent) -> None:
        while len(self._items) >= self._maxsize:
            self._not_full.clear()
            await self._not_full.wait()
        self._items.append(event)
        self._arrivals.append(time.time())
        self._not_empty.set()

    async def take(self, max_items: int, wait_seconds: float) -> list[RawEvent]:
        """Up to ``max_items`` events: what is queued now, else what arrives within ``wait_seconds``
        (``wait_seconds <= 0``: only what is queued now)."""
        items: list[RawEvent] = []
        self._taken_arrival = None
        deadline = time.monotonic() + wait_seconds
        while True:
            while self._items and len(items) < max_items:
                items.append(self._items.popleft())
                arrival = self._arrivals.popleft()
                if self._taken_arrival is None:
                    self._taken_arrival = arrival
            if len(self._items) < self._maxsize:
                self._not_full.set()
            if len(items) >= max_items:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._not_empty.clear()
            try:
                await asyncio.wait_for(self._not_empty.wait(), remaining)
            except TimeoutError:
                break
        return items

    def empty(self) -> bool:
        return not self._items

    def arrived(self) -> datetime | None:
        """When the oldest event of the last ``take`` arrived (None: it took nothing)."""
        return None if self._taken_arrival is None else datetime.fromtimestamp(self._taken_arrival, UTC)


@dataclass(slots=True)
class Processed:
    batch: PostBatch
    """The batch's posts; from a worker process they arrive as columns (``PostBatch``)."""
    deletions: list[Deletion]
    quarantine: list[QuarantineRecord]
    cursors: dict[str, str]
    normalized: dict[str, int] = field(default_factory=dict)
    """Events per source that normalized (the rest of the batch's events were quarantined)."""
    quarantined: dict[str, int] = field(default_factory=dict)
    posted: dict[str, int] = field(default_factory=dict)
    """Posts per source that passed the privacy gate (what the source's ``posts`` counter adds)."""
    deleted: dict[str, int] = field(default_factory=dict)
    """Deletions per source."""
    timings: dict[str, ComponentTiming] = field(default_factory=dict)
    backfilled: bool = False
    """A backfill chunk: stored posts upgraded, not new input (no ordered stage, no batch counted)."""


class Processor:
    """The middle of the flow: raw events to storable rows. Pure but for the gate's secrets, so it
    can run in worker processes (``WorkerSetup``) as well as in the runtime's own."""

    def __init__(self, gate: PrivacyGate, pipeline: Pipeline | None = None) -> None:
        self.gate = gate
        self.pipeline = pipeline

    def process(self, events: Sequence[RawEvent], *, now: datetime | None = None) -> Processed:
        now = now or datetime.now(UTC)
        drafts: list[Draft] = []
        origins: list[RawEvent] = []  # the event each draft came from
        posts: list[Post] = []
        posted: list[RawEvent] = []  # the event each post came from
        out = Processed(PostBatch(posts), [], [], {})
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
                    out.deleted[ev.source_id] = out.deleted.get(ev.source_id, 0) + 1
                else:
                    drafts.append(item)
                    origins.append(ev)
            out.normalized[ev.source_id] = out.normalized.get(ev.source_id, 0) + 1
        for draft, origin in zip(drafts, origins, strict=True):
            try:
                posts.append(self.gate.apply(draft, now=now))
                posted.append(origin)
                out.posted[origin.source_id] = out.posted.get(origin.source_id, 0) + 1
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
            try:
                self.pipeline.process(posts)
            except Exception as exc:
                out.batch = PostBatch(self._enrich_alone(posts, posted, out, exc))
            out.timings = dict(self.pipeline.timings)
            self.pipeline.timings.clear()
        return out

    def _enrich_alone(
        self, posts: list[Post], origins: list[RawEvent], out: Processed, error: Exception
    ) -> list[Post]:
        """The batch failed in enrichment: each post is enriched alone, and one that fails alone is
        quarantined with the error (its event's source and position), so one odd post cannot stop
        the stream (a restart would replay it and fail again). A failure that is no post's own,
        where the warm-up post fails too or every post fails, is raised: a model that cannot run
        must stop the service with its error, not quarantine the whole stream."""
        assert self.pipeline is not None
        log.error("enrichment failed on a batch of %d posts (%s): trying them one by one", len(posts), error)
        try:
            self.pipeline.split()[0].process([_warmup_post()])
        except Exception:
            raise error from None
        kept: list[Post] = []
        failed: list[tuple[RawEvent, str]] = []
        for post, origin in zip(posts, origins, strict=True):
            try:
                self.pipeline.process([post])
            except Exception as exc:
                failed.append((origin, f"enrichment error: {type(exc).__name__}: {exc}"))
            else:
                kept.append(post)
        if not kept and len(posts) > 1:
            raise error
        for origin, reason in failed:
            log.error("post from %s at %s quarantined: %s", origin.source_id, origin.position, reason)
            out.quarantine.append(_quarantine(origin, reason[:500], None))
            out.quarantined[origin.source_id] = out.quarantined.get(origin.source_id, 0) + 1
            out.posted[origin.source_id] -= 1
        return kept


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
    batch = out.batch
    # The batch as it is stored, taken before the hooks ask for ``Post`` objects (which a batch from
    # a worker builds from its columns: only then, and only once).
    stored = PostBatch(table=batch.table())
    extras = [w for w in (hook(batch.posts) for hook in hooks) if w is not None] if hooks else []
    store.write(
        posts=stored,
        deletions=out.deletions,
        quarantine=out.quarantine,
        cursors=out.cursors,
        embeddings=_embeddings(stored),
        extras=extras,
    )


def _embeddings(batch: PostBatch) -> list[tuple[str, str, list[float]]]:
    vectors = batch.column("embedding")
    if all(v is None for v in vectors):
        return []
    keys = zip(batch.column("platform"), batch.column("post_id"), strict=True)
    return [(pl, pid, list(v)) for (pl, pid), v in zip(keys, vectors, strict=True) if v is not None]


# --- backfill ----------------------------------------------------------------------------------------
class Upgrader(Protocol):
    """A component that redoes, with its better models, what a cheaper model labelled under overload
    (``murmur.enrich.neural.tiered.TieredEnricher``). Posts whose ``sentiment_model`` is one of
    ``firehose_models`` are the ones to upgrade."""

    firehose_models: tuple[str, ...]

    def upgrade(self, posts: Sequence[Post]) -> int: ...

    def upgrade_rate(self) -> float: ...


BACKFILL_CHUNK_SECONDS = 1.0
"""How long one backfill chunk should take: new input waits for at most one chunk."""

BackfillKey = tuple[datetime, str, str]
"""Where a backfill pass stands: (ingested_at, platform, post_id) of the last post read."""


def find_upgrader(pipeline: Pipeline | None) -> Upgrader | None:
    """The pipeline's ``Upgrader`` component, if it has one (the firehose tier has none)."""
    for comp in pipeline.components if pipeline is not None else ():
        if callable(getattr(comp, "upgrade", None)) and getattr(comp, "firehose_models", None):
            return cast(Upgrader, comp)
    return None


def read_firehose_labelled(
    store: Store, models: Sequence[str], limit: int, *, after: BackfillKey | None = None
) -> list[Post]:
    """Up to ``limit`` stored posts labelled by one of ``models``, oldest ingested first (after
    ``after``, when given)."""
    if limit <= 0 or not models:
        return []
    params: list[Any] = list(models)
    marks = ", ".join("?" for _ in models)
    sql = f"SELECT {', '.join(POST_COLUMNS)} FROM posts WHERE sentiment_model IN ({marks})"
    if after is not None:
        sql += " AND (ingested_at, platform, post_id) > (?, ?, ?)"
        params.extend(after)
    sql += " ORDER BY ingested_at, platform, post_id LIMIT ?"
    params.append(limit)
    return posts_from_table(store.conn.sql(sql, params=params).to_arrow_table())


def count_firehose_labelled(store: Store, models: Sequence[str]) -> int:
    if not models:
        return 0
    marks = ", ".join("?" for _ in models)
    row = store.conn.execute(f"SELECT count(*) FROM posts WHERE sentiment_model IN ({marks})", list(models))
    found = row.fetchone()
    return int(found[0]) if found else 0


def write_backfilled(store: Store, posts: Sequence[Post], hooks: Sequence[BatchHook] = ()) -> None:
    """Upsert upgraded posts, their embeddings and the hooks' rows (the search index keys on the
    sentiment) in one transaction. A post deleted since it was read stays deleted."""
    if not posts:
        return
    embeddings = [(p.platform, p.post_id, list(p.embedding)) for p in posts if p.embedding is not None]
    extras = [w for w in (hook(posts) for hook in hooks) if w is not None]
    store.write(posts=posts, embeddings=embeddings, extras=extras)


def backfill(store: Store, upgrader: Upgrader, limit: int, hooks: Sequence[BatchHook] = ()) -> int:
    """Upgrade up to ``limit`` firehose-labelled posts, oldest first, in the calling thread (the one
    writer's); returns how many (0 when none is left). ``Runtime`` does the same when idle."""
    posts = read_firehose_labelled(store, upgrader.firehose_models, limit)
    if not posts:
        return 0
    upgrader.upgrade(posts)
    write_backfilled(store, posts, hooks)
    return len(posts)


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
        stateless.warm_up()
        stateless.process([_warmup_post()])
        stateless.timings.clear()
    _freeze_loaded_objects()


FULL_COLLECTION_EVERY = 100
"""Batches between a worker's full garbage collections (``_collect_between_batches``)."""

_batches_done = 0


def _freeze_loaded_objects() -> None:
    """A worker collects its garbage between batches, not every 700 allocations.

    Python's cycle collector runs after every 700 new container objects. A batch of 2,000 posts
    makes hundreds of thousands of them and keeps them alive to its end, so automatic collection
    ran ~20 times a batch, each time scanning the whole batch and the loaded models again: 11.7-14.3
    us a post, 6-8 % of a firehose worker's time. So once the models are loaded their objects are
    moved out of the collector's sight (``gc.freeze``) and automatic collection is switched off;
    ``_collect_between_batches`` collects instead (~1.4 us a post).

    At exit the frozen objects are handed back to the collector: frozen, they would outlive the
    interpreter's last collection (and DuckDB's bindings would report them as leaked)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    atexit.register(_thaw)


def _thaw() -> None:
    gc.unfreeze()
    gc.enable()
    gc.collect()


def _collect_between_batches() -> None:
    """Before each batch: a collection of the young generations (the previous batch is gone by then,
    apart from its few cyclic leftovers, which this frees), and every ``FULL_COLLECTION_EVERY``-th
    batch a full one, for cycles that outlived a young collection."""
    global _batches_done
    _batches_done += 1
    gc.collect(2 if _batches_done % FULL_COLLECTION_EVERY == 0 else 1)


def _exit_with_parent(parent: int) -> None:
    """A worker whose runtime was killed (``kill -9``) would wait on its task queue forever: the
    sibling workers keep the queue's pipe open. So each worker leaves when its parent is gone, also
    when that happened while the worker was still starting (``parent`` is the runtime's pid).

    On a normal exit the watcher is stopped first: a thread still running while the interpreter
    shuts down keeps this module's globals, and through them DuckDB's bindings, alive, and those
    (nanobind) then print a page of "leaked instance" warnings."""
    done = threading.Event()

    def watch() -> None:
        while os.getppid() == parent:
            if done.wait(1.0):
                return
        os._exit(0)

    watcher = threading.Thread(target=watch, name="murmur-parent-watch", daemon=True)
    watcher.start()

    def stop() -> None:
        done.set()
        watcher.join()

    atexit.register(stop)


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


_EventColumns = tuple[list[str], list[str], list[bytes], list[str]]
"""A batch of events as it goes to a worker process: ``RawEvent``'s fields, one list each."""


def _event_columns(events: Sequence[RawEvent]) -> _EventColumns:
    """The events as lists of their fields: pickled in the runtime's own process (the serial one),
    2,000 real events cost 1.0 µs an event so, 2.2 as ``RawEvent`` objects (one reduce each)."""
    return (
        [e.source_id for e in events],
        [e.format for e in events],
        [e.payload for e in events],
        [e.position for e in events],
    )


def _process_in_worker(columns: _EventColumns, secret: PeriodSecret, now: datetime) -> Processed:
    assert _worker_processor is not None, "worker not initialised"
    _collect_between_batches()
    _worker_processor.gate.pseudonyms.use(secret)
    events = [RawEvent(*fields) for fields in zip(*columns, strict=True)]
    return _worker_processor.process(events, now=now)


def _upgrade_in_worker(posts: list[Post]) -> list[Post]:
    """A backfill chunk, upgraded by the worker's own (already loaded) upgrader."""
    assert _worker_processor is not None, "worker not initialised"
    _collect_between_batches()
    upgrader = find_upgrader(_worker_processor.pipeline)
    if upgrader is None:
        msg = "backfill: the worker's pipeline has no upgrader"
        raise RuntimeError(msg)
    upgrader.upgrade(posts)
    return posts


async def _offer(
    inflight: asyncio.Queue[asyncio.Future[Processed] | None],
    item: asyncio.Future[Processed] | None,
    writer: asyncio.Task[None],
) -> None:
    """Put ``item`` in ``inflight`` for ``writer``, or give up (cancelling ``item``) when the writer
    ends first: a writer that died (a failed store write, a component's error) takes no more work,
    and waiting for room in its full queue would hang the runtime, SIGTERM included, for ever."""
    put = asyncio.ensure_future(inflight.put(item))
    await asyncio.wait((put, writer), return_when=asyncio.FIRST_COMPLETED)
    if not put.done():
        put.cancel()
        if item is not None:
            item.cancel()


class Runtime:
    """Runs sources until they end (files, replays) or ``stop`` is set (SIGTERM), storing as it goes.

    Batches are processed in order of arrival and written in that order, one transaction each. With
    ``workers`` (a ``WorkerSetup`` with ``workers >= 2``) the stateless part of the work (normalize,
    gate, stateless enrichment) runs in that many processes at once, while the runtime's own process
    runs the stateful components (near-duplicates) and the one writer, still in arrival order.

    ``backfill_idle_seconds`` (None: never) and ``backfill_chunk`` drive the backfill (module doc).
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
        backfill_idle_seconds: float | None = 2.0,
        backfill_chunk: int = 256,
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
        self.upgrader = find_upgrader(processor.pipeline) if backfill_idle_seconds is not None else None
        self.backfill_idle_seconds = max(0.0, backfill_idle_seconds or 0.0)
        self.backfill_chunk = max(1, backfill_chunk)
        # With workers, the upgrader runs where the pipeline runs it: in the workers (stateless
        # prefix), or here, in the ordered stage (the same instance as in ``processor.pipeline``).
        ordered = self.ordered.components if self.ordered is not None else []
        in_ordered = any(c is cast(object, self.upgrader) for c in ordered)
        self._upgrade_in_pool = self.workers is not None and not in_ordered
        self._busy = 0  # batches and backfill chunks submitted and not yet written
        self._last_input = time.monotonic()  # when input was last taken or written
        self._backfilling = False
        self._backfill_due = self.upgrader is not None  # posts from earlier runs may be waiting
        self._backfill_after: BackfillKey | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._retry_lock = asyncio.Lock()

    async def _pump(self, source: Source) -> None:
        cursor = self.store.cursor(source.id)
        counters = self.stats.sources.setdefault(source.id, SourceCounters(position=cursor))
        raw_error: str | None = None
        try:
            async for event in source.events(cursor):
                await self.handoff.put(event)
                counters.lag_seconds = source.stats.lag_seconds
                counters.errors = source.stats.errors
                counters.reconnects = source.stats.reconnects
                if source.stats.last_error is not raw_error:  # scrubbed once per new error
                    raw_error = source.stats.last_error
                    counters.last_error = scrub_secrets(raw_error) if raw_error else None
        except Exception as exc:  # logged now, not when every other source has stopped too
            counters.stopped_by = scrub_secrets(str(exc) or type(exc).__name__)
            log.error("source %s stopped: %s", source.id, counters.stopped_by)
            raise

    def _new_pool(self, size: int | None = None) -> ProcessPoolExecutor | None:
        if self.workers is None:
            return None
        return ProcessPoolExecutor(
            size or self.workers.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.workers, os.getpid()),
        )

    def _replace_pool(self, broken: ProcessPoolExecutor) -> None:
        """A worker process died (killed, out of memory, a crash in a C extension): every batch the
        pool held fails with ``BrokenProcessPool``. The first batch to notice replaces the pool."""
        if self._pool is broken:
            log.error("a worker process died: starting a new pool")
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    async def _process(self, events: list[RawEvent], arrived: datetime | None = None) -> Processed:
        """One batch, processed where the runtime processes batches. Nothing is lost if a worker
        dies: the batches it took down with it are tried again, one at a time, each in a process of
        its own (so a second death is that batch's own doing, not a neighbour's); a batch a worker
        dies on again is quarantined with the reason, and its cursors move on. ``arrived``: when the
        batch's oldest event reached the hand-off, the batch's time of ingest (its posts'
        ``ingested_at``, from which the neural tier's latency budget counts)."""
        pool = self._pool
        now = min(arrived, datetime.now(UTC)) if arrived is not None else datetime.now(UTC)
        try:
            return await self._submit(events, pool, now)
        except BrokenProcessPool:
            assert pool is not None
            self._replace_pool(pool)
        async with self._retry_lock:
            alone = self._new_pool(size=1)
            try:
                return await self._submit(events, alone, now)
            except BrokenProcessPool:
                pass
            finally:
                assert alone is not None
                alone.shutdown(wait=False, cancel_futures=True)
        reason = "a worker process died twice while processing this event's batch"
        out = Processed(PostBatch(), [], [_quarantine(ev, reason, None) for ev in events], {})
        for ev in events:
            out.cursors[ev.source_id] = ev.position
            out.quarantined[ev.source_id] = out.quarantined.get(ev.source_id, 0) + 1
        log.error("%d events quarantined: %s", len(events), reason)
        return out

    def _submit(
        self, events: list[RawEvent], pool: ProcessPoolExecutor | None, now: datetime
    ) -> asyncio.Future[Processed]:
        loop = asyncio.get_running_loop()
        if pool is None:
            # One thread: batches are processed one after another (stateful components, key file).
            work = functools.partial(self.processor.process, events, now=now)
            return loop.run_in_executor(self._local, work)
        secret = self.processor.gate.pseudonyms.current(now)  # rotates the key file here, only here
        return loop.run_in_executor(pool, _process_in_worker, _event_columns(events), secret, now)

    def _backfill_ready(self) -> bool:
        return (
            self._backfill_due
            and self._busy == 0
            and self.handoff.empty()
            and time.monotonic() - self._last_input >= self.backfill_idle_seconds
        )

    def _read_backfill(self, limit: int) -> tuple[list[Post], int | None]:
        """The next chunk and, at the first and the last chunk of a pass, how many firehose-labelled
        posts are stored (in between, accounting keeps the count: no scan of the posts per chunk).
        Only called when nothing is in flight: the read sees every earlier batch written and
        overlaps no write."""
        assert self.upgrader is not None
        models = self.upgrader.firehose_models
        starting = self._backfill_after is None
        posts = read_firehose_labelled(self.store, models, limit, after=self._backfill_after)
        recount = starting or len(posts) < limit
        return posts, count_firehose_labelled(self.store, models) if recount else None

    def _chunk_size(self) -> int:
        """What the upgrader gets through in about ``BACKFILL_CHUNK_SECONDS`` at its measured rate (new
        input waits for at most one chunk), between 8 posts and ``backfill_chunk``."""
        assert self.upgrader is not None
        rate = self.upgrader.upgrade_rate()
        return max(8, min(self.backfill_chunk, int(rate * BACKFILL_CHUNK_SECONDS)))

    async def _backfill(self) -> Processed:
        """One backfill chunk: read, upgrade (where the pipeline runs the upgrader); the writer
        stores it in turn. A chunk that fails is logged and skipped until the next pass."""
        upgrader = self.upgrader
        assert upgrader is not None
        out = Processed(PostBatch(), [], [], {}, backfilled=True)
        try:
            limit = self._chunk_size()
            posts, stored = await asyncio.to_thread(self._read_backfill, limit)
            if stored is not None:
                self.stats.awaiting_backfill = stored  # this chunk's posts count until written
            if len(posts) < limit:  # the pass reached the newest: next pass from the start
                self._backfill_due = False
                self._backfill_after = None
            else:
                self._backfill_after = (posts[-1].ingested_at, posts[-1].platform, posts[-1].post_id)
            if posts:
                loop = asyncio.get_running_loop()
                pool = self._pool
                if self._upgrade_in_pool and pool is not None:
                    posts = await loop.run_in_executor(pool, _upgrade_in_worker, posts)
                else:
                    await loop.run_in_executor(self._local, upgrader.upgrade, posts)
            out.batch = PostBatch(posts)
        except Exception:
            log.exception("backfill: a chunk failed; it is skipped until the next pass")
        return out

    async def _put(
        self,
        inflight: asyncio.Queue[asyncio.Future[Processed] | None],
        work: asyncio.Future[Processed],
        writer: asyncio.Task[None],
    ) -> None:
        self._busy += 1
        await _offer(inflight, work, writer)

    def _finish(self, out: Processed) -> None:
        """In the runtime's process, in arrival order: stateful components, then the write."""
        if out.backfilled:
            write_backfilled(self.store, out.batch.posts, self.hooks)
            return
        if self.ordered is not None and self.ordered.components:
            self.ordered.process_batch(out.batch)
            for name, t in self.ordered.timings.items():
                out.timings[name] = t
            self.ordered.timings = {}
        write_processed(self.store, out, self.hooks)

    def _account(self, out: Processed) -> None:
        stats = self.stats
        if out.backfilled:
            stats.backfilled += len(out.batch)
            stats.awaiting_backfill = max(0, (stats.awaiting_backfill or 0) - len(out.batch))
            self._write_status()
            return
        if self.upgrader is not None:
            models = self.upgrader.firehose_models
            waiting = sum(m in models for m in out.batch.column("sentiment_model"))
            if waiting:
                self._backfill_due = True
                stats.awaiting_backfill = (stats.awaiting_backfill or 0) + waiting
        stats.batches += 1
        stats.posts += len(out.batch)
        stats.deletions += len(out.deletions)
        stats.quarantined += len(out.quarantine)
        for sid, n in out.normalized.items():
            stats.sources.setdefault(sid, SourceCounters()).events += n
        for sid, n in out.quarantined.items():
            stats.sources.setdefault(sid, SourceCounters()).quarantined += n
        for sid, n in out.posted.items():
            stats.sources.setdefault(sid, SourceCounters()).posts += n
        for sid, n in out.deleted.items():
            stats.sources.setdefault(sid, SourceCounters()).deletions += n
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
            self._busy -= 1
            if out.backfilled:
                self._backfilling = False
            else:
                self._last_input = time.monotonic()

    def _store_threads(self) -> int | None:
        """DuckDB's threads while worker processes run: the cores the workers leave (at least 1).

        DuckDB runs an insert on every core by default. With the workers on all cores, that burst
        preempts them and costs more than it saves: on 2 cores with 2 workers, in firehose runs that
        switched DuckDB between 1 and 2 threads every few batches (200,000 posts each), 1 thread
        took 8.5 % and 13 % less CPU a post (218 against 239, 235 against 270 us) and gave 10 % and
        15 % more posts a second. None: leave DuckDB as it is (no worker processes: the in-process
        pipeline and DuckDB take turns)."""
        if self.workers is None:
            return None
        return max(1, (os.cpu_count() or 1) - self.workers.workers)

    async def run(self, stop: asyncio.Event | None = None) -> RuntimeStats:
        stop = stop or asyncio.Event()
        threads = self._store_threads()
        previous_threads = self.store.set_threads(threads) if threads is not None else None
        self._pool = self._new_pool()
        if self.workers is None and self.processor.pipeline is not None:
            # in-process: load what the components load lazily before the first batch (workers do
            # the same in their initializer), so the first posts are not late by a model load
            await asyncio.to_thread(self.processor.pipeline.warm_up)
        depth = 2 * self.workers.workers if self.workers is not None else 1
        inflight: asyncio.Queue[asyncio.Future[Processed] | None] = asyncio.Queue(depth)
        writer = asyncio.create_task(self._writer(inflight))
        pumps = [asyncio.create_task(self._pump(s), name=f"source:{s.id}") for s in self.sources]
        try:
            while not writer.done():
                # While a backfill chunk is in flight, look for new input often: it goes first.
                wait = min(self.flush_seconds, 0.02) if self._backfilling else self.flush_seconds
                events = await self.handoff.take(self.batch_size, wait)
                if events:
                    self._last_input = time.monotonic()
                    await self._put(
                        inflight, asyncio.ensure_future(self._process(events, self.handoff.arrived())), writer
                    )
                elif self._backfill_ready():
                    self._backfilling = True
                    await self._put(inflight, asyncio.ensure_future(self._backfill()), writer)
                if stop.is_set():
                    self.stats.interrupted = not all(p.done() for p in pumps)
                    break
                if all(p.done() for p in pumps) and self.handoff.empty():
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
                        await self._put(
                            inflight,
                            asyncio.ensure_future(self._process(events, self.handoff.arrived())),
                            writer,
                        )
                if not writer.done():
                    await _offer(inflight, None, writer)
                await writer
            finally:
                if self._pool is not None:
                    self._pool.shutdown(cancel_futures=True)
                self._local.shutdown(wait=False)
                self._write_status()
                if previous_threads is not None:
                    self.store.set_threads(previous_threads)
        return self.stats
