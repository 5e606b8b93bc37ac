"""Builds a running murmur from a config: the gate, the pipeline, the sources and the runtime.

The CLI's ``run``, ``import`` and ``demo`` commands are thin layers over these functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from murmur.config import Config, EnrichConfig, SourceConfig
from murmur.enrich.base import Pipeline
from murmur.errors import ConfigError
from murmur.privacy import PrivacyGate
from murmur.runtime import BatchHook, Processor, Runtime, RuntimeStats, WorkerSetup
from murmur.sources import SOURCES, register_builtins
from murmur.sources.base import Source
from murmur.store import ReadServer, Store

log = logging.getLogger(__name__)


def key_file_for(config: Config) -> Path:
    if config.privacy.secret_file:
        return Path(config.privacy.secret_file)
    return Path(f"{config.store.path}.keys")


def build_gate(config: Config) -> PrivacyGate:
    return PrivacyGate(
        key_file=key_file_for(config),
        period_days=config.privacy.retention_days,
        public_accounts=config.privacy.public_accounts,
    )


def build_pipeline(enrich: EnrichConfig) -> Pipeline | None:
    """The enrichment pipeline for the configured tier (``none`` stores posts un-enriched)."""
    capacity = enrich.neardup_capacity
    if enrich.components is not None:
        from murmur.enrich import components_pipeline
        from murmur.enrich import register_builtins as register_components

        register_components()
        return components_pipeline(enrich.components, neardup_capacity=capacity)
    if enrich.tier == "none":
        return None
    if enrich.tier == "firehose":
        from murmur.enrich import firehose_pipeline

        return firehose_pipeline(neardup_capacity=capacity)
    if enrich.tier == "neural":
        from murmur.enrich.neural import neural_pipeline

        return neural_pipeline(neardup_capacity=capacity)
    msg = f"enrich.tier must be 'neural', 'firehose' or 'none', got {enrich.tier!r}"
    raise ConfigError(msg)


def worker_setup(config: Config) -> WorkerSetup:
    workers = config.enrich.workers
    if workers is None:
        workers = 1 if config.enrich.tier == "neural" else min(os.cpu_count() or 1, 8)
    return WorkerSetup(
        workers=workers,
        public_accounts=tuple(config.privacy.public_accounts),
        period_days=config.privacy.retention_days,
        pipeline_factory=functools.partial(build_pipeline, config.enrich),
    )


def build_sources(configs: Sequence[SourceConfig]) -> list[Source]:
    register_builtins()
    return [SOURCES.get(sc.type)(sc) for sc in configs]


def build_hooks(store: Store) -> Sequence[BatchHook]:
    """Per-batch writers from the query layer (token index, live monitor matches), when present."""
    try:
        from murmur.query.live import batch_hooks
    except ImportError:
        return []
    return batch_hooks(store)


def purge_expired(store: Store, retention_days: int) -> dict[str, int]:
    return store.purge(older_than=datetime.now(UTC) - timedelta(days=retention_days))


def build_runtime(
    config: Config,
    store: Store,
    *,
    sources: Sequence[Source] | None = None,
    on_batch: Callable[[RuntimeStats], None] | None = None,
    batch_size: int = 2000,
) -> Runtime:
    """The runtime ``run_service`` runs over ``store`` (the configured sources unless ``sources``):
    gate, pipeline, query-layer hooks, worker processes, status file and backfill as configured.
    The soak benchmark builds it here too, to look inside it while it runs."""
    return Runtime(
        store,
        list(sources) if sources is not None else build_sources(config.sources),
        Processor(build_gate(config), build_pipeline(config.enrich)),
        hooks=build_hooks(store),
        status_file=Path(f"{config.store.path}.status.json"),
        on_batch=on_batch,
        batch_size=batch_size,
        workers=worker_setup(config),
        backfill_idle_seconds=config.enrich.backfill_idle_seconds if config.enrich.backfill else None,
        backfill_chunk=config.enrich.backfill_chunk,
    )


async def run_service(
    config: Config,
    *,
    sources: Sequence[Source] | None = None,
    stop: asyncio.Event | None = None,
    on_batch: Callable[[RuntimeStats], None] | None = None,
    serve_reads: bool = True,
    purge_every_seconds: float = 3600.0,
    batch_size: int = 2000,
) -> RuntimeStats:
    """The 24/7 service: holds the store, serves reads to other processes, purges expired data,
    and stops gracefully on SIGTERM/SIGINT (the current batch is stored, cursors committed)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    store = Store.open(config.store.path, memory_limit=config.store.memory_limit)
    server = ReadServer(store.conn, config.store.path).start() if serve_reads else None
    try:
        purge_expired(store, config.privacy.retention_days)
        runtime = build_runtime(config, store, sources=sources, on_batch=on_batch, batch_size=batch_size)

        async def purger() -> None:
            while True:
                await asyncio.sleep(purge_every_seconds)
                removed = await asyncio.to_thread(purge_expired, store, config.privacy.retention_days)
                log.info("retention purge removed %s", removed)

        purge_task = asyncio.create_task(purger())
        try:
            return await runtime.run(stop)
        finally:
            purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge_task
    finally:
        if server is not None:
            server.stop()
        store.checkpoint()
        store.close()
