"""The runtime's worker processes: each builds its own ``Processor`` once (``init_worker``), then
normalizes, gates and enriches the batches handed to it (``process_in_worker``) and upgrades backfill
chunks (``upgrade_in_worker``)."""

from __future__ import annotations

import atexit
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
from murmur.runtime.collect import collect_between_batches, freeze_loaded_objects, thaw
from murmur.runtime.processor import Preparer, Processed, Processor, warmup_post
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
    preparers: tuple[Preparer, ...] = ()
    """``PreparedHook.prepare`` of the hooks whose per-post work the workers do (``Runtime`` fills it)."""


_worker_processor: Processor | None = None


def init_worker(setup: WorkerSetup, parent: int) -> None:
    global _worker_processor  # one processor per worker process, built once
    _exit_with_parent(parent)
    # The parallelism is the processes: one math thread each, or they fight over the cores.
    threadpoolctl.threadpool_limits(1)
    pipeline = setup.pipeline_factory()
    stateless = pipeline.split()[0] if pipeline is not None else None
    gate = PrivacyGate(key_file=None, period_days=setup.period_days, public_accounts=setup.public_accounts)
    _worker_processor = Processor(gate, stateless, setup.preparers)
    if stateless is not None:  # load lazily-loaded models now, not inside the first batch
        stateless.warm_up()
        stateless.process([warmup_post()])
        stateless.timings.clear()
    freeze_loaded_objects()
    atexit.register(thaw)


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
    collect_between_batches()
    _worker_processor.gate.pseudonyms.use(secret)
    events = [RawEvent(*fields) for fields in zip(*columns, strict=True)]
    return _worker_processor.process(events, now=now)


def upgrade_in_worker(posts: list[Post]) -> list[Post]:
    """A backfill chunk, upgraded by the worker's own (already loaded) upgrader."""
    assert _worker_processor is not None, "worker not initialised"
    collect_between_batches()
    upgrader = find_upgrader(_worker_processor.pipeline)
    if upgrader is None:
        msg = "backfill: the worker's pipeline has no upgrader"
        raise RuntimeError(msg)
    upgrader.upgrade(posts)
    return posts
