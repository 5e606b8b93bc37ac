"""The runtime's worker processes: each builds its own ``Processor`` once (``init_worker``), then
normalizes, gates and enriches the batches handed to it (``process_in_worker``) and upgrades backfill
chunks (``upgrade_in_worker``)."""

from __future__ import annotations

import atexit
import gc
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import threadpoolctl

from murmur.enrich.base import Pipeline
from murmur.privacy import PrivacyGate
from murmur.privacy.pseudonym import PeriodSecret
from murmur.runtime.backfill import find_upgrader
from murmur.runtime.processor import Processed, Processor, warmup_post
from murmur.types import Post, RawEvent


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


def init_worker(setup: WorkerSetup, parent: int) -> None:
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
        stateless.process([warmup_post()])
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


EventColumns = tuple[list[str], list[str], list[bytes], list[str]]
"""A batch of events as it goes to a worker process: ``RawEvent``'s fields, one list each."""


def event_columns(events: Sequence[RawEvent]) -> EventColumns:
    """The events as lists of their fields: pickled in the runtime's own process (the serial one),
    2,000 real events cost 1.0 µs an event so, 2.2 as ``RawEvent`` objects (one reduce each)."""
    return (
        [e.source_id for e in events],
        [e.format for e in events],
        [e.payload for e in events],
        [e.position for e in events],
    )


def process_in_worker(columns: EventColumns, secret: PeriodSecret, now: datetime) -> Processed:
    assert _worker_processor is not None, "worker not initialised"
    _collect_between_batches()
    _worker_processor.gate.pseudonyms.use(secret)
    events = [RawEvent(*fields) for fields in zip(*columns, strict=True)]
    return _worker_processor.process(events, now=now)


def upgrade_in_worker(posts: list[Post]) -> list[Post]:
    """A backfill chunk, upgraded by the worker's own (already loaded) upgrader."""
    assert _worker_processor is not None, "worker not initialised"
    _collect_between_batches()
    upgrader = find_upgrader(_worker_processor.pipeline)
    if upgrader is None:
        msg = "backfill: the worker's pipeline has no upgrader"
        raise RuntimeError(msg)
    upgrader.upgrade(posts)
    return posts
