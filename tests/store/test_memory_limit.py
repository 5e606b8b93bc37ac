"""``store.memory_limit``: what DuckDB may hold for the store, in the writer, its read socket and the
direct readers; queries larger than it spill to disk; a store whose key indexes outgrow it says so."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from murmur.config import DEFAULT_MEMORY_LIMIT, parse_config
from murmur.errors import QueryError, StoreError
from murmur.query.aggregate import grouped_counts
from murmur.service import run_service
from murmur.sources.base import SourceStats
from murmur.store import DirectReader, Store
from murmur.store.reader import SocketReader, socket_path_for
from murmur.types import Post, RawEvent


def mib(setting: str) -> float:
    """DuckDB's ``current_setting('memory_limit')`` (``'286.1 MiB'``, ``'5.8 GiB'``) in MiB."""
    number, unit = setting.split()
    return float(number) * {"MiB": 1, "GiB": 1024}[unit]


def limit_of(conn: duckdb.DuckDBPyConnection) -> str:
    return str(conn.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


@pytest.mark.parametrize(
    ("value", "expected_mib"),
    [("300MB", 286.1), ("1GB", 953.6), ("1.5GiB", 1536), ("512 mib", 512), ("32MB", 30.5)],
)
def test_every_form_the_config_accepts_reaches_duckdb(
    tmp_path: Path, value: str, expected_mib: float
) -> None:
    cfg = parse_config({"store": {"path": str(tmp_path / "m.duckdb"), "memory_limit": value}}, env={})
    with Store.open(cfg.store.path, memory_limit=cfg.store.memory_limit) as store:
        assert mib(limit_of(store.conn)) == pytest.approx(expected_mib, abs=0.1)
        assert mib(limit_of(store.conn.cursor())) == pytest.approx(expected_mib, abs=0.1)  # read socket's
    reader = DirectReader.open(cfg.store.path, memory_limit=cfg.store.memory_limit)
    try:
        setting = reader.query("SELECT current_setting('memory_limit') AS m").to_pylist()[0]["m"]
        assert mib(setting) == pytest.approx(expected_mib, abs=0.1)
    finally:
        reader.close()


def test_the_default_is_a_share_of_memory_below_duckdbs_80_percent(tmp_path: Path) -> None:
    assert DEFAULT_MEMORY_LIMIT.endswith("%")
    assert float(DEFAULT_MEMORY_LIMIT.removesuffix("%")) < 80
    expected = limit_of(duckdb.connect(":memory:", config={"memory_limit": DEFAULT_MEMORY_LIMIT}))
    assert mib(expected) < mib(limit_of(duckdb.connect(":memory:")))  # DuckDB's own default
    with Store.open(tmp_path / "m.duckdb") as store:
        assert limit_of(store.conn) == expected
    reader = DirectReader.open(tmp_path / "m.duckdb")
    try:
        assert reader.query("SELECT current_setting('memory_limit') AS m").to_pylist()[0]["m"] == expected
    finally:
        reader.close()


class Idle:
    """A source that emits nothing until the service stops."""

    id = "idle"
    format = "jsonl"

    def __init__(self) -> None:
        self.stats = SourceStats()

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        await asyncio.Event().wait()
        yield RawEvent(source_id=self.id, format=self.format, position="0", payload=b"")  # pragma: no cover


def test_the_service_holds_the_store_within_the_configured_limit(tmp_path: Path) -> None:
    """`murmur run` (``run_service``) opens the store with ``store.memory_limit`` (here from the
    environment), and the queries other processes send through its read socket run within it."""
    path = tmp_path / "m.duckdb"
    cfg = parse_config(
        {"store": {"path": str(path)}, "enrich": {"tier": "none"}},
        env={"MURMUR_STORE_MEMORY_LIMIT": "300MB"},
    )

    async def go() -> str:
        stop = asyncio.Event()
        task = asyncio.create_task(run_service(cfg, sources=[Idle()], stop=stop))
        sock = socket_path_for(path)
        for _ in range(200):
            if sock.exists() or task.done():
                break
            await asyncio.sleep(0.05)
        try:
            table = await asyncio.to_thread(
                SocketReader(sock).query, "SELECT current_setting('memory_limit') AS m"
            )
        finally:
            stop.set()
            await task
        return str(table.to_pylist()[0]["m"])

    assert mib(asyncio.run(go())) == pytest.approx(286.1, abs=0.1)


def fill_terms(path: Path, posts: int, vocabulary: int) -> None:
    """``posts`` posts with 8 terms each, from ``vocabulary`` terms, each term from 32+ authors."""
    with Store.open(path) as store:
        store.conn.execute(
            f"""INSERT INTO posts BY NAME SELECT 'bluesky' AS platform, 'p' || i AS post_id,
            TIMESTAMPTZ '2026-01-01' + to_seconds(i) AS created_at,
            TIMESTAMPTZ '2026-01-01' AS ingested_at, 'a' || (i % 4999) AS author_key, 'x' AS text,
            [] AS domains, [] AS hashtags, [] AS mentions, false AS is_reply, false AS is_repost,
            false AS has_media, false AS has_link, 0 AS redactions,
            list_transform(range(8), lambda j: 'w' || ((i * 8 + j) % {vocabulary})) AS terms
            FROM range({posts}) r(i)"""
        )


def test_a_query_larger_than_the_limit_spills_to_disk_and_answers(tmp_path: Path) -> None:
    """Counts by term over 200,000 posts (1.6 million post-term pairs, 50,000 groups of distinct
    authors) need more than 32 MB: under that limit they still answer, in the writer (whose read
    socket serves the other processes) and in a direct reader, spilling to ``<store>.tmp``."""
    path = tmp_path / "m.duckdb"
    posts, vocabulary = 200_000, 50_000
    fill_terms(path, posts, vocabulary)
    with Store.open(path, memory_limit="32MB") as store:  # with nowhere to spill, it does not fit
        store.conn.execute("SET temp_directory = ''")
        with pytest.raises(QueryError, match="Out of Memory"):
            grouped_counts(DirectReader(store.conn.cursor()), ["term"], k=5, audited=False)
    with Store.open(path, memory_limit="32MB") as store:
        cells = grouped_counts(DirectReader(store.conn.cursor()), ["term"], k=5, audited=False)
        assert len(cells) == vocabulary
        assert sum(c.posts or 0 for c in cells) == posts * 8
    reader = DirectReader.open(path, memory_limit="32MB")
    try:
        cells = grouped_counts(reader, ["term"], k=5, audited=False)
        assert sum(c.posts or 0 for c in cells) == posts * 8
    finally:
        reader.close()


def fill_long_keys(path: Path, posts: int) -> None:
    """``posts`` posts with long, spread keys (256 characters: ~28 MB of index per 100,000), created
    one a second from 2020-01-01."""
    with Store.open(path) as store:
        store.conn.execute(
            f"""INSERT INTO posts BY NAME SELECT 'bluesky' AS platform, repeat(md5(i::VARCHAR), 8) AS post_id,
            TIMESTAMPTZ '2020-01-01' + to_seconds(i) AS created_at, now() AS ingested_at, 'a' AS author_key,
            'x' AS text, [] AS domains, [] AS hashtags, [] AS mentions, false AS is_reply,
            false AS is_repost, false AS has_media, false AS has_link, 0 AS redactions
            FROM range({posts}) r(i)"""
        )


NAMED = r"raise store\.memory_limit \(MURMUR_STORE_MEMORY_LIMIT\)"


def test_a_store_whose_key_indexes_outgrow_the_limit_names_the_setting(tmp_path: Path) -> None:
    """New keys go into the primary keys' indexes, which DuckDB then holds in memory (all of them,
    for keys spread over the index as new posts' are): a store that outgrew its ``memory_limit``
    cannot take a batch. The error says so and names the setting (it was DuckDB's bare "Out of
    Memory Error: could not allocate block"), and nothing of the batch is stored."""
    path = tmp_path / "m.duckdb"
    fill_long_keys(path, 100_000)
    now = datetime.now(UTC)
    batch = [
        Post(
            platform="bluesky",
            post_id=hashlib.md5(str(-i).encode()).hexdigest() * 8,
            created_at=now,
            ingested_at=now,
            author_key="b",
            text="x",
        )
        for i in range(1, 2001)
    ]
    with Store.open(path, memory_limit="32MB") as store:
        with pytest.raises(StoreError, match=NAMED) as info:
            store.write(posts=batch, cursors={"s": "2000"})
        assert "key indexes" in str(info.value)
        assert store.cursor("s") is None
    with Store.open(path) as store:
        assert store.conn.execute("SELECT count(*) FROM posts").fetchall() == [(100_000,)]
        store.write(posts=batch, cursors={"s": "2000"})  # with room, the same batch is stored
        assert store.conn.execute("SELECT count(*) FROM posts").fetchall() == [(102_000,)]


def test_a_purge_that_outgrows_the_limit_names_the_setting_and_loses_nothing(tmp_path: Path) -> None:
    """Deleting keys needs the indexes in memory too; there DuckDB's commit fails fatally (it closes
    the database: was a bare "FATAL Error: Failed: database has been invalidated"). The error names
    the setting, and the store, opened again with room, holds every post and purges."""
    path = tmp_path / "m.duckdb"
    fill_long_keys(path, 100_000)
    cutoff = datetime(2020, 1, 1, 10, tzinfo=UTC)  # the first 36,000 posts are older
    with Store.open(path, memory_limit="32MB") as store:
        with pytest.raises(StoreError, match=NAMED) as info:
            store.purge(older_than=cutoff)
        assert "the retention purge" in str(info.value)
        assert "'32MB'" in str(info.value) or "30.5 MiB" in str(info.value)
    with Store.open(path) as store:
        assert store.conn.execute("SELECT count(*) FROM posts").fetchall() == [(100_000,)]
        assert store.purge(older_than=cutoff)["posts"] == 36_000
