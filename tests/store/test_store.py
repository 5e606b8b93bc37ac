from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import duckdb
import pytest

from murmur.errors import QueryError, StoreError, StoreLockedError
from murmur.store import DirectReader, QuarantineRecord, ReadServer, Store, open_reader
from murmur.store.reader import SocketReader
from murmur.store.schema import DERIVED_TABLES
from murmur.types import Deletion, Post

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def post(i: int, *, text: str = "hello", created: datetime = NOW) -> Post:
    return Post(
        platform="bluesky",
        post_id=f"p{i}",
        created_at=created,
        ingested_at=NOW,
        author_key=f"a{i % 7}",
        text=text,
        domains=["example.com"],
        hashtags=["tag"],
    )


def test_upsert_is_idempotent_and_last_write_wins(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.duckdb") as store:
        store.write(posts=[post(i) for i in range(10)], cursors={"s": "10"})
        store.write(posts=[post(i, text="edited") for i in range(5, 15)], cursors={"s": "15"})
        rows = store.conn.execute("SELECT post_id, text FROM posts ORDER BY post_id").fetchall()
        assert len(rows) == 15
        assert dict(rows)["p7"] == "edited"
        assert dict(rows)["p1"] == "hello"
        assert store.cursor("s") == "15"
        assert store.cursor("other") is None


def test_a_replayed_batch_is_upserted_with_its_extras_and_cursor_once(tmp_path: Path) -> None:
    """New posts take a plain INSERT; a batch holding stored keys falls back to the upsert, and the
    batch's other writes happen once, in the transaction that commits."""
    calls: list[int] = []

    def extra(conn: duckdb.DuckDBPyConnection) -> None:
        calls.append(1)
        conn.execute("INSERT INTO meta VALUES ('extra-' || ?, 'x')", [str(len(calls))])

    with Store.open(tmp_path / "m.duckdb") as store:
        store.write(posts=[post(1), post(2)], cursors={"s": "2"})
        store.write(posts=[post(3), post(2, text="edited")], cursors={"s": "3"}, extras=[extra])
        rows = store.conn.execute("SELECT post_id, text FROM posts ORDER BY post_id").fetchall()
        assert rows == [("p1", "hello"), ("p2", "edited"), ("p3", "hello")]
        assert calls == [1]
        extras = store.conn.execute("SELECT key FROM meta WHERE key LIKE 'extra-%'").fetchall()
        assert extras == [("extra-1",)]
        assert store.cursor("s") == "3"


def test_deletion_removes_post_and_blocks_replayed_create(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.duckdb") as store:
        store.write(posts=[post(1), post(2)], embeddings=[("bluesky", "p1", [0.1, 0.2])])
        store.write(deletions=[Deletion("bluesky", "p1")])
        assert store.conn.execute("SELECT post_id FROM posts").fetchall() == [("p2",)]
        assert store.conn.execute("SELECT count(*) FROM embeddings").fetchone() == (0,)
        store.write(posts=[post(1)])  # a replay after a crash must not resurrect it
        assert store.conn.execute("SELECT post_id FROM posts").fetchall() == [("p2",)]


class _CountingConn:
    """The store's connection, counting the DELETE statements sent through it."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self.deletes = 0

    def execute(self, sql: str, *args: Any) -> duckdb.DuckDBPyConnection:
        self.deletes += sql.startswith("DELETE")
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> duckdb.DuckDBPyConnection:
        self.deletes += len(rows) if sql.startswith("DELETE") else 0
        return self.conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_a_batch_of_deletions_is_one_statement_per_table(tmp_path: Path) -> None:
    """A DELETE by key scans the whole table: one per deleted post made deletions cost
    O(deletions x stored posts) (bench/soak.py). A batch's deletions, duplicates and posts written
    in the same batch included, go in one statement per table, and each leaves one tombstone."""
    with Store.open(tmp_path / "m.duckdb") as store:
        store.write(posts=[post(i) for i in range(300)], embeddings=[("bluesky", "p0", [0.1])])
        counting = _CountingConn(store.conn)
        store.conn = cast(duckdb.DuckDBPyConnection, counting)
        gone = [Deletion("bluesky", f"p{i}") for i in range(0, 300, 2)]
        store.write(posts=[post(301)], deletions=[*gone, gone[0], Deletion("bluesky", "p301")])
        assert counting.deletes == 1 + len(DERIVED_TABLES)
        store.conn = counting.conn
        kept = store.conn.execute("SELECT count(*), count(*) FILTER (post_id = 'p301') FROM posts").fetchone()
        assert kept == (150, 0)
        assert store.conn.execute("SELECT count(*) FROM embeddings").fetchone() == (0,)
        assert store.conn.execute("SELECT count(*) FROM tombstones").fetchone() == (151,)
        store.write(posts=[post(4), post(6)])  # replayed creates of deleted posts stay deleted
        assert store.conn.execute("SELECT count(*) FROM posts").fetchone() == (150,)


def test_failed_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.duckdb") as store:

        def boom(conn: object) -> None:
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError):
            store.write(posts=[post(1)], cursors={"s": "1"}, extras=[boom])
        assert store.conn.execute("SELECT count(*) FROM posts").fetchone() == (0,)
        assert store.cursor("s") is None


def test_quarantine_keeps_reason_and_position_not_payload(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.duckdb") as store:
        q = QuarantineRecord.of(
            source_id="s",
            format="jetstream",
            position="42",
            reason="truncated JSON",
            field=None,
            payload=b'{"did": "did:plc:secret"',
        )
        store.write(quarantine=[q])
        row = store.conn.execute("SELECT * FROM quarantine").fetchone()
        assert row is not None
        assert "truncated JSON" in row
        assert "42" in row
        assert not any("secret" in str(v) for v in row)


def test_purge_removes_old_posts_and_derived_rows(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.duckdb") as store:
        old = NOW - timedelta(days=40)
        store.write(posts=[post(1, created=old), post(2)], embeddings=[("bluesky", "p1", [1.0])])
        removed = store.purge(older_than=NOW - timedelta(days=30))
        assert removed["posts"] == 1
        assert store.conn.execute("SELECT post_id FROM posts").fetchall() == [("p2",)]
        assert store.conn.execute("SELECT count(*) FROM embeddings").fetchone() == (0,)


def test_purge_counts_a_future_dated_post_from_its_arrival(tmp_path: Path) -> None:
    with Store.open(tmp_path / "m.duckdb") as store:
        future = post(1, created=NOW + timedelta(days=365 * 70))  # a client clock, or a forged time
        store.write(posts=[future, post(2)], embeddings=[("bluesky", "p1", [1.0])])
        assert store.purge(older_than=NOW - timedelta(days=30))["posts"] == 0
        removed = store.purge(older_than=NOW + timedelta(seconds=1))  # the cutoff, 30 days on
        assert removed["posts"] == 2
        assert store.conn.execute("SELECT count(*) FROM posts").fetchone() == (0,)
        assert store.conn.execute("SELECT count(*) FROM embeddings").fetchone() == (0,)


def test_a_file_that_is_no_store_is_refused_not_replaced_by_memory(tmp_path: Path) -> None:
    # DuckDB opens an in-memory database in place of an existing non-DuckDB file: a store "written"
    # there would vanish on exit
    others = (("posts.jsonl", b'{"text": "x"}\n'), ("empty.duckdb", b""), ("notes.csv", b"a,b\n"))
    for name, content in others:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(StoreError, match="is not a murmur store"):
            Store.open(path)
        with pytest.raises(StoreError, match="is not a murmur store"):
            DirectReader.open(path)
        assert path.read_bytes() == content
    fresh = tmp_path / "new.jsonl"  # a new path is fine, whatever its suffix
    with Store.open(fresh) as store:
        store.write(posts=[post(1)])
    reader = DirectReader.open(fresh)
    try:
        assert reader.query("SELECT count(*) AS n FROM posts").column("n").to_pylist() == [1]
    finally:
        reader.close()


def test_migrations_apply_once(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    Store.open(path).close()
    with Store.open(path) as store:
        versions = store.conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert len(versions) == len(set(versions))
        assert store.schema_version() >= 1


def test_readers_accept_only_select(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    Store.open(path).close()
    reader = DirectReader.open(path)
    with pytest.raises(QueryError, match="SELECT"):
        reader.query("DELETE FROM posts")
    with pytest.raises(QueryError, match="SELECT"):
        reader.query("SELECT 1; DROP TABLE posts")
    reader.close()


def test_second_process_reads_through_the_writer(tmp_path: Path) -> None:
    """While one process holds the store for writing, another still reads (no 'database is locked')."""
    path = tmp_path / "m.duckdb"
    store = Store.open(path)
    store.write(posts=[post(i) for i in range(12)])
    server = ReadServer(store.conn, path).start()
    try:
        code = textwrap.dedent(
            f"""
            from murmur.store import open_reader
            r = open_reader({str(path)!r})
            rows = r.query("SELECT count(*) AS n FROM posts WHERE text = ?", ["hello"]).to_pylist()
            print(type(r).__name__, rows)
            try:
                r.query("DELETE FROM posts")
            except Exception as e:
                print(type(e).__name__)
            """
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split("\n")[:2] == ["SocketReader [{'n': 12}]", "QueryError"]
        assert (path.parent / "m.duckdb.sock").stat().st_mode & 0o777 == 0o600
    finally:
        server.stop()
        store.close()


def test_locked_store_without_service_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    store = Store.open(path)
    try:
        code = f"from murmur.store import open_reader\nopen_reader({str(path)!r})"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert res.returncode != 0
        assert "StoreLockedError" in res.stderr
        assert "murmur run" in res.stderr
    finally:
        store.close()
    assert isinstance(open_reader(path), DirectReader)
    assert SocketReader is not None
    assert StoreLockedError is not None


def test_single_row_reads_leave_the_connection_free_for_the_next_query(tmp_path: Path) -> None:
    # DuckDB keeps a result read in part (fetchone() on a row) open, and refuses the connection's next
    # relation: a restarted service whose first read was its stored cursor could not read its backfill
    from murmur.runtime.backfill import count_firehose_labelled, read_firehose_labelled

    path = tmp_path / "db.duckdb"
    store = Store.open(path)
    store.write(posts=[post(1)], cursors={"bsky": "42"})
    store.close()
    store = Store.open(path)
    assert store.cursor("bsky") == "42"
    assert read_firehose_labelled(store, ["m@1"], 10) == []
    assert store.threads() >= 1
    assert count_firehose_labelled(store, ["m@1"]) == 0
    assert store.conn.sql("SELECT count(*) FROM posts").fetchall() == [(1,)]
    store.close()


def test_no_single_row_fetch_in_the_code() -> None:
    # the rule behind the test above, for code still to be written: murmur.store.schema.fetch_one
    src = Path(__file__).resolve().parents[2] / "src" / "murmur"
    found = [
        f"{path.relative_to(src)}:{n}"
        for path in src.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ".fetchone()" in line and "``" not in line
    ]
    assert found == [], f"use murmur.store.schema.fetch_one: {found}"
