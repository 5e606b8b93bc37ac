"""Reading the store from any process, also while ``murmur run`` holds it for writing.

DuckDB lets one process open a file for writing and then no other process at all. So:

* ``DirectReader`` opens the file read-only when nobody writes to it;
* ``SocketReader`` asks the writing process, which serves read-only SQL on a Unix socket next to
  the store file (``<store>.sock``, mode 0600) through ``ReadServer``.

``open_reader(path)`` picks whichever works. Both answer ``query(sql, params) -> pyarrow.Table``,
and only single SELECT statements are accepted by either, so the query layer above cannot tell the
two apart.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import orjson
import pyarrow as pa

from murmur.config import DEFAULT_MEMORY_LIMIT
from murmur.errors import QueryError, StoreError, StoreLockedError


class Reader(Protocol):
    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...

    def close(self) -> None: ...


def socket_path_for(store_path: str | Path) -> Path:
    return Path(f"{store_path}.sock")


def ensure_select(sql: str) -> None:
    """Refuse anything but one SELECT (or WITH ... SELECT) statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        msg = f"not valid SQL: {exc}"
        raise QueryError(msg) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        msg = "readers accept exactly one SELECT statement"
        raise QueryError(msg)


def _run(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> pa.Table:
    ensure_select(sql)
    try:
        rel = conn.sql(sql, params=list(params))
        table: pa.Table = rel.to_arrow_table() if rel is not None else pa.table({})
    except duckdb.Error as exc:
        msg = f"query failed: {exc}"
        raise QueryError(msg) from None
    return table


def check_store_file(path: str | Path) -> None:
    """Refuse a path that holds something other than a DuckDB database. DuckDB would open an
    in-memory database in its place (a ``--db posts.jsonl`` typo), and all that was written to the
    "store" would be lost on exit. A path that does not exist yet is fine: the writer creates it."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(12)
    except FileNotFoundError:
        return
    except OSError as exc:
        msg = f"cannot read store {p}: {exc}"
        raise StoreError(msg) from None
    if head[8:12] != b"DUCK":
        msg = (
            f"{p} is not a murmur store: it holds something other than a DuckDB database "
            "(pass a new or existing store path as --db)"
        )
        raise StoreError(msg)


def set_memory_limit(conn: duckdb.DuckDBPyConnection, memory_limit: str, path: str | Path) -> None:
    """Bound what DuckDB holds for the store at ``path`` (every connection to it shares the limit).
    Queries that need more spill to ``<path>.tmp``, DuckDB's default ``temp_directory``."""
    quoted = memory_limit.replace("'", "''")
    try:
        conn.execute(f"SET memory_limit = '{quoted}'")
    except duckdb.Error as exc:
        conn.close()
        first = str(exc).splitlines()[0]
        msg = f"store {path}: store.memory_limit {memory_limit!r} is not usable: {first}"
        raise StoreError(msg) from None


class DirectReader:
    """A read-only connection to a store file nobody is writing to (or an existing connection)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, path: str | Path, *, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> DirectReader:
        if not Path(path).exists():
            msg = f"store {path} does not exist; create it with `murmur import` or `murmur run`"
            raise StoreError(msg)
        check_store_file(path)
        try:
            conn = duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            msg = f"store {path} is locked by another process: {exc}"
            raise StoreLockedError(msg) from None
        conn.execute("SET TimeZone = 'UTC'")
        set_memory_limit(conn, memory_limit, path)
        return cls(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return _run(self._conn, sql, params)

    def close(self) -> None:
        self._conn.close()


# --- the socket protocol: 4-byte big-endian length + body, both ways --------------------------------
def _send(sock: socket.socket, body: bytes) -> None:
    sock.sendall(struct.pack(">I", len(body)) + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            msg = "the murmur service closed the read socket mid-answer"
            raise StoreError(msg)
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    return _recv_exact(sock, size)


def _table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


class SocketReader:
    """Reads through the writing process's read socket."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        ensure_select(sql)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(self._path))
            except OSError as exc:
                msg = f"cannot reach the murmur service at {self._path}: {exc}"
                raise StoreLockedError(msg) from None
            _send(sock, orjson.dumps({"sql": sql, "params": list(params)}, default=str))
            answer = _recv(sock)
        if answer[:1] == b"E":
            raise QueryError(answer[1:].decode("utf-8", "replace"))
        with pa.ipc.open_stream(answer[1:]) as stream:
            return stream.read_all()

    def close(self) -> None:
        return None


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            request = orjson.loads(_recv(self.request))
            table = _run(self.server.cursor(), str(request["sql"]), request.get("params") or [])
            _send(self.request, b"T" + _table_to_ipc(table))
        except (QueryError, StoreError, ValueError, KeyError, TypeError) as exc:
            with contextlib.suppress(OSError):
                _send(self.request, b"E" + str(exc).encode())


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn
        self._local = threading.local()
        super().__init__(path, _Handler)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._conn.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur


class ReadServer:
    """Serves read-only SQL on ``<store>.sock`` from the process that holds the store for writing."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, store_path: str | Path) -> None:
        self.path = socket_path_for(store_path)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = _Server(str(self.path), conn)
        finally:
            os.umask(old)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="murmur-read-server", daemon=True
        )

    def start(self) -> ReadServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def open_reader(path: str | Path, *, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> Reader:
    """A reader for the store at ``path``: direct when free (within ``memory_limit``), through the
    service when it is held (within the service's own limit)."""
    try:
        return DirectReader.open(path, memory_limit=memory_limit)
    except StoreLockedError:
        sock = socket_path_for(path)
        if sock.exists():
            return SocketReader(sock)
        msg = (
            f"store {path} is held by another process that serves no read socket ({sock}); "
            "stop that process or run it as `murmur run`, which serves reads"
        )
        raise StoreLockedError(msg) from None
