"""The query layer's per-post work in the runtime's worker processes (``PreparedHook``): each
worker turns its enriched batch into ``post_search`` rows, and the runtime's own process only
matches the monitors against them and writes. The rows and the matches are those the runtime's
own process computes from the posts; and the workers do that work only when the ordered stage,
which runs after them, assigns nothing the rows read."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pytest

from murmur.enrich.base import Pipeline
from murmur.privacy import PrivacyGate
from murmur.query.index import INDEX_READS, Doc, doc_of, ensure_current_index, index_rows
from murmur.query.live import QueryLayerHook
from murmur.query.monitors import add_monitor
from murmur.runtime import Processor, Runtime, RuntimeStats, WorkerSetup, Writer
from murmur.store import Store
from murmur.testing import ListSource, has_shared_data, real_payload_mix
from murmur.types import Post
from tests.query.helpers import post

BATCHES = 6  # 600 payloads in batches of 100


class Mood:
    """Stands in for a sentiment model (stateless: it runs in the workers)."""

    name = "tests.mood@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"sentiment"})

    def process(self, posts: Sequence[Post]) -> None:
        for p in posts:
            p.sentiment = "negative" if " the " in p.text.lower() else "neutral"


class OrderedMood(Mood):
    """The same, stateful: it runs in the runtime's ordered stage, after the workers."""

    name = "tests.ordered-mood@1"
    stateful = True


def stateless() -> Pipeline:
    return Pipeline([Mood()])


def ordered() -> Pipeline:
    return Pipeline([OrderedMood()])


class CountingHook(QueryLayerHook):
    """The query layer's hook, counting which of its two paths each batch took."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.from_posts = 0
        self.from_rows = 0

    def __call__(self, posts: Sequence[Post]) -> Writer | None:
        self.from_posts += 1
        return super().__call__(posts)

    def write_prepared(self, rows: pa.Table) -> Writer | None:
        self.from_rows += 1
        return super().write_prepared(rows)


Ran = tuple[Store, CountingHook, Runtime]


def run(
    tmp: Path, name: str, factory: Callable[[], Pipeline], workers: int, *, kill_at_batch: int = 0
) -> Ran:
    killed: list[int] = []

    def on_batch(stats: RuntimeStats) -> None:  # SIGKILL a worker once (as tests/test_runtime_workers.py)
        if kill_at_batch and stats.batches == kill_at_batch and not killed:
            kids = [c for c in psutil.Process().children() if "resource_tracker" not in " ".join(c.cmdline())]
            os.kill(kids[0].pid, signal.SIGKILL)
            killed.append(kids[0].pid)

    store = Store.open(tmp / f"{name}.duckdb")
    ensure_current_index(store.conn)
    add_monitor(store.conn, "moody", "sentiment:negative AND (lang:und OR platform:reddit)")
    add_monitor(store.conn, "words", 'police OR "the city" OR clim*')
    hook = CountingHook(store)
    payloads = real_payload_mix(600)
    runtime = Runtime(
        store,
        [ListSource(fmt, fmt, items) for fmt, items in payloads.items()],
        Processor(PrivacyGate(key_file=tmp / "keys"), factory()),  # one key file: the same pseudonyms
        batch_size=100,
        hooks=[hook],
        workers=WorkerSetup(workers=workers, public_accounts=(), period_days=30, pipeline_factory=factory),
        on_batch=on_batch,
    )
    stats = asyncio.run(asyncio.wait_for(runtime.run(), 120))
    assert stats.batches == BATCHES
    assert bool(killed) == bool(kill_at_batch)
    return store, hook, runtime


def stored(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The search rows (all but ``ingested_at``, the time of the run) and the monitor matches."""
    index = store.conn.execute(
        "SELECT * EXCLUDE (ingested_at) FROM post_search ORDER BY platform, post_id"
    ).fetchall()
    matches = store.conn.execute(
        "SELECT monitor_id, platform, post_id, created_at FROM monitor_matches ORDER BY ALL"
    ).fetchall()
    return index, matches


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[list[tuple[object, ...]], ...]]:
    """The runtime's own process does all the work (one worker: none started)."""
    if not has_shared_data():
        pytest.skip("../shared/data is absent (the real payloads live there)")
    tmp = tmp_path_factory.mktemp("live-workers")
    store, hook, runtime = run(tmp, "alone", stateless, workers=1)
    assert runtime.prepared_by == []
    assert hook.from_posts > 0
    assert hook.from_rows == 0
    index, matches = stored(store)
    store_posts = store.conn.execute("SELECT count(*) FROM posts").fetchall()[0][0]
    store.close()
    assert store_posts > 300
    assert len(index) == store_posts
    assert {m[0] for m in matches} == {"moody", "words"}
    assert 0 < len(matches) < 600
    return tmp, (index, matches)


def test_workers_prepare_the_rows_the_runtime_would_compute(
    alone: tuple[Path, tuple[list[tuple[object, ...]], ...]],
) -> None:
    tmp, want = alone
    store, hook, runtime = run(tmp, "workers", stateless, workers=2)
    assert runtime.prepared_by == [hook]
    assert hook.from_posts == 0
    assert hook.from_rows == BATCHES
    assert stored(store) == want
    store.close()


def test_a_killed_worker_changes_no_row(alone: tuple[Path, tuple[list[tuple[object, ...]], ...]]) -> None:
    # the batches the dead worker held are tried again, each in a fresh worker that prepares them too
    tmp, want = alone
    store, hook, _ = run(tmp, "killed", stateless, workers=2, kill_at_batch=2)
    assert hook.from_posts == 0
    assert hook.from_rows == BATCHES
    assert stored(store) == want
    store.close()


def test_an_ordered_stage_that_assigns_what_the_rows_read_keeps_the_work_here(
    alone: tuple[Path, tuple[list[tuple[object, ...]], ...]],
) -> None:
    # the sentiment is assigned after the workers: rows prepared there would lack it
    tmp, want = alone
    store, hook, runtime = run(tmp, "ordered", ordered, workers=2)
    assert runtime.prepared_by == []
    assert hook.from_posts == BATCHES
    assert hook.from_rows == 0
    assert stored(store) == want
    store.close()


def test_the_rows_read_only_the_fields_they_declare() -> None:
    # INDEX_READS is what decides whether a worker may prepare the rows: a field outside it that
    # changes must leave the rows as they are
    base = post("p1", "Climate strike at #COP30 https://nytimes.com/x", lang="en", sentiment="positive")
    want = index_rows([base])
    changed: dict[str, Any] = {
        "community": "r/climate",
        "mentions": ["someone"],
        "redactions": 3,
        "lang_conf": 0.5,
        "sentiment_score": 0.9,
        "sentiment_model": "m@1",
        "terms": ["climate"],
        "simhash": 7,
        "dup_cluster": "c1",
        "embedding": [0.1, 0.2],
        "embedding_model": "e5@1",
        "minhash": b"\x01\x02",
    }
    fields = set(Post.__dataclass_fields__)
    assert set(changed) == fields - INDEX_READS, "a new Post field: add it here or to INDEX_READS"
    for name, value in changed.items():
        other = dataclasses.replace(base, **{name: value})
        assert index_rows([other]).equals(want), name
    # and a field inside it does change them
    assert not index_rows([post("p1", base.text, lang="de", sentiment="positive")]).equals(want)


def test_a_doc_reads_back_from_its_indexed_text() -> None:
    for p in [
        post("p1", "Climate strike at #COP30 https://nytimes.com/x", lang="pt-br", sentiment="positive"),
        post("p2", "", has_media=True),
        post("p3", "東京 タワー 🗼"),
    ]:
        doc = doc_of(p)
        assert Doc.from_indexed(doc.indexed_text) == doc
