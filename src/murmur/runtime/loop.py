"""``Runtime``: runs the sources, batches what they hand off, has it processed (here or in worker
processes) and writes it in arrival order, one transaction a batch; backfills when idle (package doc)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import orjson

from murmur.batch import PostBatch
from murmur.enrich.base import ComponentTiming, Pipeline
from murmur.runtime.backfill import (
    BACKFILL_CHUNK_SECONDS,
    BackfillKey,
    count_firehose_labelled,
    find_upgrader,
    read_firehose_labelled,
    write_backfilled,
)
from murmur.runtime.collect import between_batches_only, collect_between_batches
from murmur.runtime.handoff import QueueHandoff
from murmur.runtime.processor import (
    BatchHook,
    PreparedHook,
    Processed,
    Processor,
    quarantine_record,
    write_processed,
)
from murmur.runtime.stats import RuntimeStats, SourceCounters
from murmur.runtime.workers import (
    WorkerSetup,
    event_columns,
    init_worker,
    process_in_worker,
    upgrade_in_worker,
)
from murmur.sources.base import Source
from murmur.store import Store
from murmur.types import Post, RawEvent
from murmur.urls import scrub_secrets

log = logging.getLogger(__name__)

IDLE_COLLECT_SECONDS = 5.0
"""With no batch for this long, the runtime collects its garbage anyway (automatic collection is off
while it runs: ``collect.between_batches_only``)."""


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
        self.ordered: Pipeline | None = None
        if self.workers is not None and processor.pipeline is not None:
            self.ordered = processor.pipeline.split()[1]
        self.prepared_by = self._prepared_in_workers()
        if self.prepared_by and self.workers is not None:
            preparers = tuple(hook.prepare for hook in self.prepared_by)
            self.workers = dataclasses.replace(self.workers, preparers=preparers)
        self.stats = RuntimeStats()
        self.timings: dict[str, ComponentTiming] = {}
        self.handoff = QueueHandoff(maxsize=max(4 * batch_size, 1000))
        self._local = ThreadPoolExecutor(1, thread_name_prefix="murmur-process")
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
        self._collected = time.monotonic()  # when garbage was last collected (``_collect``)

    def _prepared_in_workers(self) -> list[PreparedHook]:
        """The hooks whose per-post work the worker processes do (``PreparedHook``): with workers,
        those that read no field the ordered stage, run here after the workers, assigns."""
        if self.workers is None:
            return []
        ordered = self.ordered.components if self.ordered is not None else []
        assigned = {f for c in ordered for f in c.assigns}
        return [h for h in self.hooks if isinstance(h, PreparedHook) and not h.reads & assigned]

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
            initializer=init_worker,
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
        out = Processed(PostBatch(), [], [quarantine_record(ev, reason, None) for ev in events], {})
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
        return loop.run_in_executor(pool, process_in_worker, event_columns(events), secret, now)

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
                    posts = await loop.run_in_executor(pool, upgrade_in_worker, posts)
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
        self._collect()
        if out.backfilled:
            write_backfilled(self.store, out.batch.posts, self.hooks)
            return
        if self.ordered is not None and self.ordered.components:
            self.ordered.process_batch(out.batch)
            for name, t in self.ordered.timings.items():
                out.timings[name] = t
            self.ordered.timings = {}
        write_processed(self.store, out, self.hooks, self.prepared_by)

    def _collect(self) -> None:
        collect_between_batches()
        self._collected = time.monotonic()

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
        # automatic garbage collection off while it runs: between batches instead (collect.py)
        with between_batches_only():
            await self._serve(stop, previous_threads)
        return self.stats

    async def _serve(self, stop: asyncio.Event, previous_threads: int | None) -> None:
        """``run``'s loop: batches to the workers, the writer in arrival order, backfill when idle."""
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
                elif time.monotonic() - self._collected >= IDLE_COLLECT_SECONDS:
                    self._collect()  # no batch for a while: free the cycles the waiting left
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
