"""A Jetstream WebSocket replay server (websockets' threaded server, one thread per connection)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve


class _Envelope(msgspec.Struct):
    time_us: int = 0
    commit: dict[str, Any] | None = None


class JetstreamReplayServer:
    """Replays ``events`` over the Jetstream WebSocket protocol at ``ws://host:port/subscribe``.

    Each connection receives, in order, the events with ``time_us >= cursor`` (all of them without a
    cursor: a replay, unlike live Jetstream which starts at "now"), filtered by ``wantedCollections``
    (non-commit events always pass), then the connection stays open and idle like a quiet live
    stream. ``>=`` means the event at the cursor is sent again; sources rely on idempotent writes.

    ``drop_after=N`` closes the TCP connection abruptly (no close frame) after N messages on a
    connection, at most ``max_drops`` times in total (None: every connection). ``interval`` paces
    messages (seconds between two). ``cursors`` records the cursor each connection asked for
    (None when absent); ``sent`` counts messages sent, ``drops`` abrupt closes.
    """

    def __init__(
        self,
        events: Sequence[bytes],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        drop_after: int | None = None,
        max_drops: int | None = None,
        interval: float = 0.0,
    ) -> None:
        self.events = list(events)
        decoder = msgspec.json.Decoder(_Envelope)
        envelopes = [decoder.decode(e) for e in self.events]
        self._times = [e.time_us for e in envelopes]
        self._collections = [None if e.commit is None else e.commit.get("collection") for e in envelopes]
        self.host = host
        self.port = port
        self.drop_after = drop_after
        self.max_drops = max_drops
        self.interval = interval
        self.cursors: list[int | None] = []
        self.sent = 0
        self.drops = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/subscribe"

    def start(self) -> JetstreamReplayServer:
        if self._server is not None:
            return self
        self._stop.clear()
        self._server = serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._check_path,
            compression=None,
            ping_interval=None,
            close_timeout=1,
        )
        self.port = int(self._server.socket.getsockname()[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="jetstream-replay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> JetstreamReplayServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") != "/subscribe":
            return Response(404, "Not Found", Headers(), b"only /subscribe is served\n")
        return None

    def _drop_now(self, count: int) -> bool:
        if self.drop_after is None or count < self.drop_after:
            return False
        with self._lock:
            if self.max_drops is not None and self.drops >= self.max_drops:
                return False
            self.drops += 1
            return True

    def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        query = parse_qs(urlsplit(connection.request.path).query)
        cursor = int(query["cursor"][0]) if query.get("cursor") else None
        wanted = set(query.get("wantedCollections", []))
        with self._lock:
            self.cursors.append(cursor)
        count = 0
        try:
            for event, time_us, collection in zip(self.events, self._times, self._collections, strict=True):
                if cursor is not None and time_us < cursor:
                    continue
                if wanted and collection is not None and collection not in wanted:
                    continue
                if self._stop.is_set():
                    return
                if self._drop_now(count):
                    connection.close_socket()
                    return
                connection.send(event, text=True)
                count += 1
                with self._lock:
                    self.sent += 1
                if self.interval:
                    self._stop.wait(self.interval)
            while not self._stop.is_set():
                try:
                    connection.recv(timeout=0.1)
                except TimeoutError:
                    continue
        except ConnectionClosed:
            return
