"""The embedded store: one DuckDB file, one writer.

``Store`` is the only thing that writes. Each ``write`` is one transaction holding a batch of posts,
deletions, quarantined payloads and the source cursors that produced them, so a cursor is durable
exactly when its posts are (at-least-once delivery + idempotent upserts = no loss, no duplicates).

Readers go through ``murmur.store.reader``: a read-only connection when no writer holds the file, or
the running writer's read socket when one does.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from murmur.batch import POST_COLUMNS, POST_SCHEMA, PostBatch, last_per_key, posts_to_table
from murmur.config import DEFAULT_MEMORY_LIMIT
from murmur.errors import StoreError, StoreLockedError
from murmur.store.reader import check_store_file, set_memory_limit
from murmur.store.schema import DERIVED_TABLES, MIGRATIONS, fetch_one, untombstoned
from murmur.types import Deletion, Post


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """A payload that could not become a post. The payload itself is not kept (it may hold raw
    handles or PII); its hash, size and source position identify it for re-reading at the source."""

    source_id: str
    format: str
    position: str
    reason: str
    field: str | None
    size_bytes: int
    sha256: str

    @classmethod
    def of(
        cls, *, source_id: str, format: str, position: str, reason: str, field: str | None, payload: bytes
    ) -> QuarantineRecord:
        return cls(
            source_id=source_id,
            format=format,
            position=position,
            reason=reason[:500],
            field=field,
            size_bytes=len(payload),
            sha256=hashlib.sha256(payload).hexdigest(),
        )


CHECKPOINT_THRESHOLD = "64MB"
"""How much write-ahead log the store gathers before a checkpoint folds it into the file. DuckDB's
default, 16 MB, checkpoints about every 40,000 posts and rewrites the growing row groups each time:
writing 211,744 real posts in batches of 2,000 took 31 µs a post of CPU with it, 22 µs with 32 or
64 MB (a final checkpoint included). The price is a longer log to replay after a crash (seconds)."""


_OUT_OF_MEMORY = re.compile(r"Out of Memory|failed to pin block|could not allocate block")
"""DuckDB's words when the store's memory limit is reached: an ``OutOfMemoryException``, or, when
the commit needs the memory, a ``TransactionException`` ("Failed to commit: failed to pin block")
or a ``FatalException`` quoting the out-of-memory error."""


class _Stored(Exception):
    """A plain INSERT met posts already stored (``Store.write`` then upserts the batch)."""


@contextlib.contextmanager
def _upsert_if_stored(replace: bool) -> Iterator[None]:
    """Around plain INSERTs (``replace`` off): a key already stored raises ``_Stored``, so that
    ``Store.write`` writes the batch again as an upsert."""
    try:
        yield
    except duckdb.ConstraintException as exc:
        if replace or "duplicate key" not in str(exc).lower():
            raise
        raise _Stored from exc


def _posts_table(posts: Sequence[Post] | PostBatch) -> pa.Table:
    """The stored columns of ``posts``."""
    if isinstance(posts, PostBatch):
        return posts.table().select(POST_COLUMNS)
    return posts_to_table(posts, POST_SCHEMA)


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


class Store:
    """The one writer of a murmur store file."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: str, memory_limit: str | None = None) -> None:
        self.conn = conn
        self.path = path
        self.memory_limit = memory_limit
        """``store.memory_limit`` as configured (None: DuckDB's own default)."""
        self.replacing = False
        """While ``write`` runs its ``extras``: whether the batch replaces posts stored already (its
        upsert). When not, none of the batch's posts is stored, nor their derived rows, so an extra
        may use a plain INSERT (~60 % of an upsert's cost); should one meet a stored key anyway, the
        batch is written again as an upsert."""

    # --- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> Store:
        """Open (creating and migrating if needed) the store for writing. ``memory_limit`` bounds
        what DuckDB holds for it (``store.memory_limit``); the read socket's queries share it."""
        p = str(path)
        if p != ":memory:":
            check_store_file(p)
            Path(p).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = duckdb.connect(p)
        except duckdb.IOException as exc:
            if _is_lock_error(exc):
                msg = (
                    f"store {p} is held by another murmur process (murmur run?); "
                    "read commands reach it through that process, writes must go through it"
                )
                raise StoreLockedError(msg) from None
            msg = f"cannot open store {p}: {exc}"
            raise StoreError(msg) from None
        conn.execute("SET TimeZone = 'UTC'")
        set_memory_limit(conn, memory_limit, p)
        conn.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        store = cls(conn, p, memory_limit)
        store.migrate()
        return store

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        exists = fetch_one(
            self.conn, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        )
        if not exists or exists[0] == 0:
            return 0
        row = fetch_one(self.conn, "SELECT max(version) FROM schema_version")
        return int(row[0]) if row and row[0] is not None else 0

    def migrate(self) -> None:
        current = self.schema_version()
        if current == 0:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)"
            )
        known = max(v for v, _, _ in MIGRATIONS)
        if current > known:
            msg = f"store {self.path} has schema version {current}, newer than this murmur ({known}): upgrade"
            raise StoreError(msg)
        for version, _name, sql in MIGRATIONS:
            if version <= current:
                continue
            self.conn.execute("BEGIN TRANSACTION")
            try:
                self.conn.execute(sql)
                self.conn.execute("INSERT INTO schema_version VALUES (?, ?)", [version, datetime.now(UTC)])
                self.conn.execute("COMMIT")
            except duckdb.Error as exc:
                self.conn.execute("ROLLBACK")
                msg = f"migration {version} failed on {self.path}: {exc}"
                raise StoreError(msg) from None

    # --- writing ----------------------------------------------------------------------------------
    def write(
        self,
        posts: Sequence[Post] | PostBatch = (),
        deletions: Sequence[Deletion] = (),
        quarantine: Sequence[QuarantineRecord] = (),
        cursors: Mapping[str, str] | None = None,
        embeddings: Iterable[tuple[str, str, list[float]]] = (),
        extras: Sequence[Callable[[duckdb.DuckDBPyConnection], None]] = (),
    ) -> None:
        """Store one batch atomically: posts are upserted by (platform, post_id), deletions remove
        the post and leave a tombstone (so a replayed create cannot resurrect it), and the cursors
        are committed in the same transaction. ``extras`` write derived rows (token index, monitor
        matches, ...) inside that same transaction."""
        table = last_per_key(_posts_table(posts)) if len(posts) else None
        emb = list(embeddings)
        try:
            try:
                self._write(table, deletions, quarantine, cursors, emb, extras, replace=False)
            except _Stored:  # some of the posts are stored already (a replay, an edit): upsert them
                self._write(table, deletions, quarantine, cursors, emb, extras, replace=True)
        except duckdb.Error as exc:
            if not _OUT_OF_MEMORY.search(str(exc)):
                raise
            msg = self._out_of_memory("a batch", exc) + " Nothing of it was stored, nor its cursors."
            raise StoreError(msg) from None

    def _out_of_memory(self, what: str, exc: duckdb.Error) -> str:
        """Why a write ran out of memory, and what to do. New and deleted keys go through the
        primary keys' indexes (ART), which DuckDB holds in memory, so a store that outgrows its
        ``memory_limit`` fails in a write, not in a query (which spills to disk). DuckDB reports it
        as an out-of-memory error, a failed commit or, after a failed commit, a fatal error."""
        limit, art = repr(self.memory_limit), 0.0
        with contextlib.suppress(duckdb.Error):
            rows = self.conn.execute(
                "SELECT current_setting('memory_limit'), "
                "coalesce(sum(memory_usage_bytes) FILTER (WHERE tag = 'ART_INDEX'), 0) FROM duckdb_memory()"
            ).fetchall()
            limit, art = str(rows[0][0]), float(rows[0][1])
        first = str(exc).splitlines()[0]
        fatal = (
            " DuckDB has closed the store after it; start murmur again with the higher limit."
            if isinstance(exc, duckdb.FatalException)
            else ""
        )
        indexes = f" (now {art / 1e6:,.0f} MB in memory)" if art else ""
        return (
            f"store {self.path}: {what} did not fit in DuckDB's memory limit ({limit}): {first}. "
            f"The stored posts' key indexes{indexes} must fit in it with room to spare: raise "
            "store.memory_limit (MURMUR_STORE_MEMORY_LIMIT) or keep fewer posts "
            f"(privacy.retention_days).{fatal}"
        )

    def _write(
        self,
        posts: pa.Table | None,
        deletions: Sequence[Deletion],
        quarantine: Sequence[QuarantineRecord],
        cursors: Mapping[str, str] | None,
        emb: list[tuple[str, str, list[float]]],
        extras: Sequence[Callable[[duckdb.DuckDBPyConnection], None]],
        *,
        replace: bool,
    ) -> None:
        now = datetime.now(UTC)
        conn = self.conn
        conn.execute("BEGIN TRANSACTION")
        try:
            if posts is not None:
                # A plain INSERT costs about 60 % of an upsert (INSERT OR REPLACE), and new posts are
                # the common case: try it first; a key already stored aborts it, and the caller
                # writes the batch again as an upsert.
                verb = "INSERT OR REPLACE" if replace else "INSERT"
                conn.register("_batch", posts)
                with _upsert_if_stored(replace):
                    conn.execute(f"{verb} INTO posts BY NAME {untombstoned('_batch')}")
                conn.unregister("_batch")
            if emb:
                table = pa.Table.from_pydict(
                    {
                        "platform": [e[0] for e in emb],
                        "post_id": [e[1] for e in emb],
                        "embedding": [e[2] for e in emb],
                    },
                    schema=pa.schema(
                        [
                            ("platform", pa.string()),
                            ("post_id", pa.string()),
                            ("embedding", pa.list_(pa.float32())),
                        ]
                    ),
                )
                conn.register("_emb", table)
                conn.execute(f"INSERT OR REPLACE INTO embeddings BY NAME {untombstoned('_emb')}")
                conn.unregister("_emb")
            if deletions:
                # One statement per table for the whole batch: a DELETE by key scans the table (the
                # key index serves no two-column lookup), so one per deleted post made a batch's
                # deletions cost O(deletions x stored posts) and pulled every block of the tables
                # into DuckDB's buffer cache (bench/soak.py: throughput -34 % over 4 minutes).
                keys = dict.fromkeys((d.platform, d.post_id) for d in deletions)
                gone = pa.table(
                    {
                        "platform": [k[0] for k in keys],
                        "post_id": [k[1] for k in keys],
                        "deleted_at": pa.array([now] * len(keys), pa.timestamp("us", tz="UTC")),
                    }
                )
                conn.register("_gone", gone)
                conn.execute("INSERT OR IGNORE INTO tombstones BY NAME SELECT * FROM _gone")
                for name in ("posts", *DERIVED_TABLES):
                    conn.execute(
                        f"DELETE FROM {name} USING _gone g "
                        f"WHERE {name}.platform = g.platform AND {name}.post_id = g.post_id"
                    )
                conn.unregister("_gone")
            if quarantine:
                conn.executemany(
                    "INSERT INTO quarantine (quarantined_at, source_id, format, position, reason, field, "
                    "size_bytes, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (now, q.source_id, q.format, q.position, q.reason, q.field, q.size_bytes, q.sha256)
                        for q in quarantine
                    ],
                )
            self.replacing = replace
            try:
                with _upsert_if_stored(replace):
                    for extra in extras:
                        extra(conn)
            finally:
                self.replacing = False
            if cursors:
                conn.executemany(
                    "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)",
                    [(sid, pos, now) for sid, pos in cursors.items()],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            for view in ("_batch", "_emb", "_gone"):  # left registered by a failed statement
                conn.unregister(view)
            raise

    def cursor(self, source_id: str) -> str | None:
        row = fetch_one(self.conn, "SELECT position FROM cursors WHERE source_id = ?", [source_id])
        return None if row is None else str(row[0])

    def purge(self, *, older_than: datetime) -> dict[str, int]:
        """Delete posts (and everything derived from them) created, or stored, before ``older_than``, and
        tombstones and quarantine entries recorded before it. Returns rows removed per table."""
        conn = self.conn
        removed: dict[str, int] = {}
        conn.execute("BEGIN TRANSACTION")
        try:
            for table, column in _PURGE_TABLES:
                row = fetch_one(conn, f"SELECT count(*) FROM {table} WHERE {column} < ?", [older_than])
                removed[table] = int(row[0]) if row else 0
            for table in DERIVED_TABLES:
                conn.execute(
                    f"DELETE FROM {table} WHERE (platform, post_id) IN "
                    f"(SELECT platform, post_id FROM posts WHERE {POST_AGE} < ?)",
                    [older_than],
                )
            for table, column in _PURGE_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE {column} < ?", [older_than])
            conn.execute("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):  # a failed commit has ended the transaction
                conn.execute("ROLLBACK")
            if not _OUT_OF_MEMORY.search(str(exc)):
                raise
            msg = self._out_of_memory("the retention purge", exc) + " Nothing was purged."
            raise StoreError(msg) from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return removed

    def checkpoint(self) -> None:
        self.conn.execute("CHECKPOINT")

    def threads(self) -> int:
        """DuckDB's threads for this database (all its connections share them)."""
        row = fetch_one(self.conn, "SELECT current_setting('threads')")
        return int(row[0]) if row else 1

    def set_threads(self, n: int) -> int:
        """Let DuckDB use ``n`` threads (at least 1) for this database; returns the previous number."""
        previous = self.threads()
        self.conn.execute(f"SET threads = {max(1, int(n))}")
        return previous


POST_AGE = "least(created_at, ingested_at)"
"""A post's age for retention: from its creation, or from its arrival if it claims a later time
(a client clock or a forged timestamp in the future must not keep a post past retention)."""

_PURGE_TABLES: tuple[tuple[str, str], ...] = (
    ("posts", POST_AGE),
    ("tombstones", "deleted_at"),
    ("quarantine", "quarantined_at"),
)
