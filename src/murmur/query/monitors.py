"""Saved monitors: named queries evaluated on every post as it is ingested, matches stored.

* ``add_monitor`` saves a query and backfills its matches over stored history (through the SQL
  path, ``sql.compile_where``); ``remove_monitor`` drops it and its matches; ``list_monitors`` reads.
* ``MonitorStage`` is the live side for the runtime: it keeps a ``MonitorMatcher`` over the saved
  monitors (reloaded when they change) and turns a batch of posts into ``monitor_matches`` rows.

Tables (store migration 2): ``monitors(monitor_id, query, created_at)`` and
``monitor_matches(monitor_id, platform, post_id, created_at, matched_at)``; ``created_at`` there is
the post's, so per-monitor time series need no join. A change to ``monitors`` bumps
``meta['monitors_version']``, which is how a running ``MonitorStage`` notices it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import duckdb
import pyarrow as pa

from murmur.errors import QueryError, QuerySyntaxError
from murmur.query.ast import Query
from murmur.query.audit import audit
from murmur.query.index import Doc, doc_of
from murmur.query.matcher import MonitorMatcher
from murmur.query.parser import parse
from murmur.query.sql import compile_where
from murmur.store.reader import Reader
from murmur.store.schema import fetch_one, untombstoned
from murmur.types import Post

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION_KEY = "monitors_version"

_MATCH_FIELDS: list[tuple[str, pa.DataType]] = [
    ("monitor_id", pa.string()),
    ("platform", pa.string()),
    ("post_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("matched_at", pa.timestamp("us", tz="UTC")),
]
MATCH_SCHEMA = pa.schema(_MATCH_FIELDS)


@dataclass(frozen=True, slots=True)
class Monitor:
    monitor_id: str
    query: str
    created_at: datetime
    matches: int | None = 0
    """Stored posts matched; None when they come from fewer than k authors (suppressed)."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        msg = (
            f"monitor name {name!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
        raise QueryError(msg)
    return name


def _bump_version(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_VERSION_KEY, uuid.uuid4().hex])


def add_monitor(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    query: str,
    *,
    backfill: bool = True,
    now: datetime | None = None,
) -> tuple[Monitor, int]:
    """Save monitor ``name`` (the store's writer connection) and, with ``backfill``, match it against
    every stored post. Returns the monitor and how many stored posts it matched."""
    check_name(name)
    parsed = parse(query)
    now = now or datetime.now(UTC)
    exists = fetch_one(conn, "SELECT 1 FROM monitors WHERE monitor_id = ?", [name])
    if exists:
        msg = f"a monitor named {name!r} exists already: remove it first (murmur monitor remove {name})"
        raise QueryError(msg)
    audit("monitor.add", {"monitor_id": name, "query": query})
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("INSERT INTO monitors VALUES (?, ?, ?)", [name, query, now])
        matched = backfill_matches(conn, name, parsed, now=now) if backfill else 0
        _bump_version(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return Monitor(name, query, now, matched), matched


def backfill_matches(
    conn: duckdb.DuckDBPyConnection, name: str, query: Query, *, now: datetime | None = None
) -> int:
    """Store the matches of ``query`` among the stored posts as monitor ``name``'s (historical path)."""
    now = now or datetime.now(UTC)
    row = fetch_one(
        conn,
        "INSERT OR REPLACE INTO monitor_matches "
        f"SELECT ?, platform, post_id, created_at, ? FROM post_search WHERE {compile_where(query)}",
        [name, now],
    )
    return int(row[0]) if row else 0


def remove_monitor(conn: duckdb.DuckDBPyConnection, name: str) -> int:
    """Delete monitor ``name`` and its matches. Returns how many matches went with it."""
    exists = fetch_one(conn, "SELECT 1 FROM monitors WHERE monitor_id = ?", [name])
    if not exists:
        msg = f"there is no monitor named {name!r} (see murmur monitor list)"
        raise QueryError(msg)
    audit("monitor.remove", {"monitor_id": name})
    conn.execute("BEGIN TRANSACTION")
    try:
        row = fetch_one(conn, "DELETE FROM monitor_matches WHERE monitor_id = ?", [name])
        conn.execute("DELETE FROM monitors WHERE monitor_id = ?", [name])
        _bump_version(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(row[0]) if row else 0


_MATCH_COUNTS = (
    "SELECT m.monitor_id, m.query, m.created_at, count(p.post_id) AS matches, "
    "count(DISTINCT p.author_key) AS authors "
    "FROM monitors m LEFT JOIN monitor_matches x ON x.monitor_id = m.monitor_id "
    "LEFT JOIN posts p ON p.platform = x.platform AND p.post_id = x.post_id "
)


def _k_anonymous(matches: int, authors: int, k: int) -> int | None:
    return None if matches > 0 and authors < k else matches


def list_monitors(reader: Reader, *, k: int) -> list[Monitor]:
    """Saved monitors with their stored match counts, by name; a count backed by fewer than ``k``
    distinct authors is suppressed (None), like every other aggregate."""
    audit("monitor.list", {})
    rows = reader.query(_MATCH_COUNTS + "GROUP BY ALL ORDER BY m.monitor_id").to_pylist()
    return [
        Monitor(r["monitor_id"], r["query"], r["created_at"], _k_anonymous(r["matches"], r["authors"], k))
        for r in rows
    ]


def match_count(conn: duckdb.DuckDBPyConnection, monitor_id: str, *, k: int) -> int | None:
    """One monitor's stored matches, k-anonymous (None when suppressed)."""
    row = fetch_one(conn, _MATCH_COUNTS + "WHERE m.monitor_id = ? GROUP BY ALL", [monitor_id])
    return None if row is None else _k_anonymous(int(row[3]), int(row[4]), k)


def load_queries(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, Query]]:
    """The saved monitors, parsed. A query that no longer parses is logged and skipped."""
    out: list[tuple[str, Query]] = []
    for name, text in conn.execute("SELECT monitor_id, query FROM monitors ORDER BY monitor_id").fetchall():
        try:
            out.append((str(name), parse(str(text))))
        except QuerySyntaxError as exc:
            log.error("monitor %s is skipped: its query no longer parses: %s", name, exc)
    return out


class MonitorStage:
    """Live monitor matching for the runtime: ``match_rows(posts)`` → rows for ``monitor_matches``.

    Reads the saved monitors from ``conn`` (the store's connection) and reloads them whenever
    ``add_monitor``/``remove_monitor`` changed them (checked once per batch: one key lookup).
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self._version: str | None = None
        self.matcher = MonitorMatcher([])
        self.refresh()

    def _current_version(self) -> str:
        row = fetch_one(self.conn, "SELECT value FROM meta WHERE key = ?", [_VERSION_KEY])
        return str(row[0]) if row else ""

    def refresh(self) -> bool:
        """Reload the monitors if they changed; returns whether it did."""
        version = self._current_version()
        if version == self._version:
            return False
        self.matcher = MonitorMatcher(load_queries(self.conn))
        self._version = version
        return True

    def match_rows(
        self, posts: Sequence[Post], docs: Sequence[Doc] | None = None, *, now: datetime | None = None
    ) -> pa.Table:
        """The ``monitor_matches`` rows for ``posts`` (``docs``: their ``doc_of``, if computed)."""
        self.refresh()
        if not len(self.matcher) or not posts:
            return MATCH_SCHEMA.empty_table()
        return self._rows(
            [p.key for p in posts],
            pa.array([p.created_at for p in posts], pa.timestamp("us", tz="UTC")),
            docs if docs is not None else [doc_of(p) for p in posts],
            now,
        )

    def match_index_rows(self, rows: pa.Table, *, now: datetime | None = None) -> pa.Table:
        """``match_rows`` for posts given as their ``post_search`` rows (``index.index_rows``), as
        the runtime's workers prepare them: each post's ``Doc`` is read back from its ``st``."""
        self.refresh()
        if not len(self.matcher) or rows.num_rows == 0:
            return MATCH_SCHEMA.empty_table()
        platforms = cast(list[str], rows.column("platform").to_pylist())  # never null in index rows
        post_ids = cast(list[str], rows.column("post_id").to_pylist())
        texts = cast(list[str], rows.column("st").to_pylist())
        keys = list(zip(platforms, post_ids, strict=True))
        docs = [Doc.from_indexed(st) for st in texts]
        return self._rows(keys, rows.column("created_at").combine_chunks(), docs, now)

    def _rows(
        self,
        keys: Sequence[tuple[str, str]],
        created: pa.Array[Any],
        docs: Sequence[Doc],
        now: datetime | None,
    ) -> pa.Table:
        ids: list[str] = []
        at: list[int] = []
        last = {key: i for i, key in enumerate(keys)}  # last write wins, as in Store.write
        keep = sorted(last.values())
        for i, names in zip(keep, self.matcher.match_docs([docs[i] for i in keep]), strict=True):
            ids += names
            at += [i] * len(names)
        return pa.Table.from_arrays(
            [
                pa.array(ids, pa.string()),
                pa.array([keys[i][0] for i in at], pa.string()),
                pa.array([keys[i][1] for i in at], pa.string()),
                created.take(pa.array(at, pa.int64())),
                pa.array([now or datetime.now(UTC)] * len(ids), pa.timestamp("us", tz="UTC")),
            ],
            schema=MATCH_SCHEMA,
        )


def write_match_rows(conn: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    """Store ``MonitorStage.match_rows`` output (inside the batch's transaction), skipping posts
    that are tombstoned."""
    if rows.num_rows == 0:
        return
    conn.register("_murmur_match_rows", rows)
    try:
        conn.execute(f"INSERT OR REPLACE INTO monitor_matches BY NAME {untombstoned('_murmur_match_rows')}")
    finally:
        conn.unregister("_murmur_match_rows")
