"""A worker process dies (killed, out of memory, a crash in a C extension): nothing is lost, and the
stream goes on. The runtime replaces the pool and tries the batch again; a batch a worker dies on
twice is quarantined with its reason, its cursors move on."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil
import pytest

from murmur.enrich.base import Pipeline
from murmur.privacy import PrivacyGate
from murmur.runtime import Processor, Runtime, RuntimeStats, WorkerSetup
from murmur.store import Store
from murmur.testing import ListSource, jetstream_commit
from murmur.types import Post

POISON = "a post that makes the worker process crash"


class Poison:
    """Stands in for a crash in native code: the process exits at once, no exception, no cleanup."""

    name = "tests.poison@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset()

    def process(self, posts: Sequence[Post]) -> None:
        if any(p.text == POISON for p in posts):
            os._exit(3)


def poison_pipeline() -> Pipeline:
    return Pipeline([Poison()])


def run(
    tmp: Path,
    texts: list[str],
    *,
    kill_at_batch: int | None = None,
    store: Store | None = None,
    observe: Callable[[], None] | None = None,
) -> tuple[Store, RuntimeStats]:
    payloads = [jetstream_commit(i, text=t, did=f"did:plc:a{i % 40}") for i, t in enumerate(texts)]
    killed: list[int] = []

    def on_batch(stats: RuntimeStats) -> None:
        if observe is not None:
            observe()
        if kill_at_batch is not None and stats.batches == kill_at_batch and not killed:
            workers = [
                c for c in psutil.Process().children() if "resource_tracker" not in " ".join(c.cmdline())
            ]
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    store = store or Store.open(tmp / "db.duckdb")
    setup = WorkerSetup(workers=2, public_accounts=(), period_days=30, pipeline_factory=poison_pipeline)
    runtime = Runtime(
        store,
        [ListSource("bsky", "jetstream", payloads)],
        Processor(PrivacyGate(key_file=tmp / "keys"), poison_pipeline()),
        batch_size=100,
        workers=setup,
        on_batch=on_batch,
    )
    stats = asyncio.run(asyncio.wait_for(runtime.run(), 120))
    assert kill_at_batch is None or killed, "no worker was killed"
    return store, stats


def test_a_killed_worker_loses_nothing(tmp_path: Path) -> None:
    store, stats = run(tmp_path, [f"post {i} about the flood" for i in range(1500)], kill_at_batch=2)
    assert stats.posts == 1500
    assert stats.quarantined == 0
    assert store.conn.execute("SELECT count(*) FROM posts").fetchall() == [(1500,)]
    assert store.cursor("bsky") == "1500"


def test_a_batch_that_kills_its_worker_twice_is_quarantined_and_the_stream_goes_on(tmp_path: Path) -> None:
    texts = [f"post {i} about the flood" for i in range(600)]
    texts[250] = POISON  # in the third batch of 100
    store, stats = run(tmp_path, texts)
    assert stats.posts == 500
    assert stats.quarantined == 100
    rows = store.conn.execute("SELECT DISTINCT reason FROM quarantine").fetchall()
    assert rows == [("a worker process died twice while processing this event's batch",)]
    assert store.conn.execute("SELECT count(*) FROM posts").fetchall() == [(500,)]
    assert store.cursor("bsky") == "600"


def test_duckdb_gets_the_cores_the_workers_leave_while_they_run(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.duckdb")
    store.set_threads(7)
    seen: list[int] = []
    texts = [f"post {i}" for i in range(300)]  # 3 batches
    run(tmp_path, texts, store=store, observe=lambda: seen.append(store.threads()))
    assert len(seen) == 3
    assert set(seen) == {max(1, (os.cpu_count() or 1) - 2)}
    assert store.threads() == 7  # as it was before the run


def test_workers_exit_without_noise(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A worker's exit is quiet: its parent-watch thread is stopped and its frozen objects thawed
    first, else DuckDB's bindings print a page of "nanobind: leaked ..." lines per worker."""
    _, stats = run(tmp_path, [f"post {i}" for i in range(200)])
    assert stats.posts == 200
    err = capfd.readouterr().err
    assert "leaked" not in err, err[:2000]
