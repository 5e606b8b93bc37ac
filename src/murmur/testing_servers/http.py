"""HTTP test servers on the standard library's threaded server: Mastodon, Reddit and feeds."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson

from murmur.testing_servers.payloads import (
    id_key,
    mastodon_statuses_from_real_payloads,
    real_feed_documents,
    reddit_things_from_real_payloads,
)

log = logging.getLogger(__name__)


class _Request(msgspec.Struct, kw_only=True):
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes


class _Reply(msgspec.Struct, kw_only=True):
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    trickle: float = 0.0
    """Seconds between the body's bytes, sent one at a time (0: all at once)."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status=status, body=orjson.dumps(data), headers=headers or {})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _HTTPServer

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = _Request(
            method=self.command,
            path=parts.path,
            query={k: v[0] for k, v in parse_qs(parts.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        reply = self.server.app.injected(request) or self.server.app.route(request, self)
        if reply is None:  # the route streamed its own response
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 304:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.status != 304 and reply.trickle > 0:
            for i in range(len(reply.body)):
                if self.server.app.stopping.wait(reply.trickle):
                    return
                self.wfile.write(reply.body[i : i + 1])
                self.wfile.flush()
        elif reply.status != 304:
            self.wfile.write(reply.body)

    do_GET = _dispatch
    do_POST = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: " + format, self.server.app.__class__.__name__, *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], app: _LoopbackHTTP) -> None:
        self.app = app
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: connection from %s ended with an error", self.app.__class__.__name__, client_address)


class _RateWindow:
    """A fixed window of ``limit`` requests per ``window`` seconds (None: unlimited)."""

    def __init__(self, limit: int | None, window: float) -> None:
        self.limit = limit
        self.window = window
        self.used = 0
        self.reset_at = 0.0

    def take(self) -> tuple[bool, int, float]:
        """(allowed, remaining after this request, seconds until the window resets)."""
        now = time.monotonic()
        if now >= self.reset_at:
            self.reset_at = now + self.window
            self.used = 0
        reset_in = self.reset_at - now
        if self.limit is None:
            self.used += 1
            return True, 1_000_000, reset_in
        if self.used >= self.limit:
            return False, 0, reset_in
        self.used += 1
        return True, self.limit - self.used, reset_in


class _LoopbackHTTP:
    """Base of the HTTP test servers: a threaded stdlib server on loopback, ``start()``/``stop()``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._faults: list[tuple[str, _Reply]] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        if self._server is None:
            self.stopping.clear()
            self._server = _HTTPServer((self.host, self.port), self)
            self.port = int(self._server.server_address[1])
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with server.sockets_lock:
            open_sockets = list(server.open_sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def route(self, request: _Request, handler: _Handler) -> _Reply | None:
        raise NotImplementedError

    def inject(
        self,
        status: int,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        path: str = "/",
        times: int = 1,
        trickle: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path`` with this reply instead
        of the real one: faults such as a 429 with ``Retry-After``, a 502 page, a body that is not
        what its ``Content-Encoding`` says, or one sent a byte every ``trickle`` seconds."""
        reply = _Reply(
            status=status, body=body, content_type="text/plain", headers=dict(headers or {}), trickle=trickle
        )
        with self.lock:
            self._faults.extend([(path, reply)] * times)

    def injected(self, request: _Request) -> _Reply | None:
        with self.lock:
            for i, (path, reply) in enumerate(self._faults):
                if request.path.startswith(path):
                    del self._faults[i]
                    return reply
        return None

    def _sse(self, handler: _Handler) -> Callable[[bytes], None]:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def chunk(data: bytes) -> None:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            handler.wfile.flush()

        return chunk


def _http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC), usegmt=True)


class MastodonServer(_LoopbackHTTP):
    """A Mastodon instance's public timelines: REST (``/api/v1/timelines/public``,
    ``/api/v1/timelines/tag/<tag>``) and SSE streaming (``/api/v1/streaming/public``,
    ``/public/local``, ``/hashtag?tag=``, ``/health``).

    ``statuses`` (default: the real ones) are ordered by id. The first ``published`` of them (default
    all) are visible from the start; the rest are published one by one to streaming clients (each is
    visible over REST from the moment it is streamed), ``stream_interval`` seconds apart, after which
    the stream sends ``:thump`` heartbeats every ``heartbeat`` seconds. ``publish(n)`` publishes
    silently (REST only). ``drop_after=N`` cuts a stream abruptly after N updates (at most
    ``max_drops`` times), first publishing ``publish_on_drop`` statuses silently, so that a client must
    backfill over REST to close the gap. ``delete_every``/``edit_every=k`` follow every k-th streamed
    update with a ``delete`` (the status disappears from REST too) or a ``status.update`` event.

    ``access_token`` (if set) must arrive as ``Authorization: Bearer <token>``. ``rate_limit``
    requests per ``rate_window`` seconds on REST, announced in ``X-RateLimit-Limit/Remaining/Reset``
    (an ISO 8601 time, as Mastodon does); beyond it: 429. Counters: ``rest_requests``, ``throttled``,
    ``stream_connections``, ``streamed`` (updates sent).
    """

    def __init__(
        self,
        statuses: Sequence[dict[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        published: int | None = None,
        access_token: str | None = None,
        stream_interval: float = 0.0,
        heartbeat: float = 0.2,
        drop_after: int | None = None,
        max_drops: int | None = None,
        publish_on_drop: int = 0,
        delete_every: int = 0,
        edit_every: int = 0,
        rate_limit: int | None = None,
        rate_window: float = 300.0,
    ) -> None:
        super().__init__(host, port)
        source = mastodon_statuses_from_real_payloads() if statuses is None else list(statuses)
        self.statuses = sorted(source, key=lambda s: id_key(str(s["id"])))
        self._next = len(self.statuses) if published is None else min(published, len(self.statuses))
        self._deleted: set[str] = set()
        self.access_token = access_token
        self.stream_interval = stream_interval
        self.heartbeat = heartbeat
        self.drop_after = drop_after
        self.max_drops = max_drops
        self.publish_on_drop = publish_on_drop
        self.delete_every = delete_every
        self.edit_every = edit_every
        self.rate = _RateWindow(rate_limit, rate_window)
        self.rest_requests = 0
        self.throttled = 0
        self.stream_connections = 0
        self.streamed = 0
        self.drops = 0

    def publish(self, n: int = 1) -> None:
        with self.lock:
            self._next = min(self._next + n, len(self.statuses))

    def published(self) -> list[dict[str, Any]]:
        """The statuses visible over REST now, oldest first."""
        with self.lock:
            return [s for s in self.statuses[: self._next] if str(s["id"]) not in self._deleted]

    def route(self, request: _Request, handler: _Handler) -> _Reply | None:
        path = request.path.rstrip("/")
        if path == "/api/v1/streaming/health":
            return _Reply(body=b"OK", content_type="text/plain")
        if self.access_token and request.headers.get("authorization") != f"Bearer {self.access_token}":
            return _json({"error": "The access token is invalid"}, 401)
        if path.startswith("/api/v1/streaming/"):
            kind = path.removeprefix("/api/v1/streaming/")
            if kind not in ("public", "public/local", "hashtag", "hashtag/local"):
                return _json({"error": "Unknown stream type"}, 404)
            tag = request.query.get("tag") if kind.startswith("hashtag") else None
            self._stream(handler, tag)
            return None
        if path == "/api/v1/timelines/public":
            return self._timeline(request, None)
        if path.startswith("/api/v1/timelines/tag/"):
            return self._timeline(request, path.removeprefix("/api/v1/timelines/tag/"))
        return _json({"error": "Record not found"}, 404)

    @staticmethod
    def _has_tag(status: dict[str, Any], tag: str | None) -> bool:
        return tag is None or any(
            str(t.get("name", "")).lower() == tag.lower() for t in status.get("tags") or []
        )

    def _timeline(self, request: _Request, tag: str | None) -> _Reply:
        with self.lock:
            self.rest_requests += 1
            allowed, remaining, reset_in = self.rate.take()
            if not allowed:
                self.throttled += 1
        reset_at = datetime.now(UTC) + timedelta(seconds=reset_in)
        headers = {
            "X-RateLimit-Limit": str(self.rate.limit or 300),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": reset_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if not allowed:
            return _json({"error": "Too many requests"}, 429, headers)
        limit = max(1, min(int(request.query.get("limit", "20")), 40))
        newest_first = [s for s in reversed(self.published()) if self._has_tag(s, tag)]
        q = request.query
        if "max_id" in q:
            newest_first = [s for s in newest_first if id_key(str(s["id"])) < id_key(q["max_id"])]
        if "since_id" in q:
            newest_first = [s for s in newest_first if id_key(str(s["id"])) > id_key(q["since_id"])]
        if "min_id" in q and "since_id" not in q:
            above = [s for s in newest_first if id_key(str(s["id"])) > id_key(q["min_id"])]
            page = above[-limit:]
        else:
            page = newest_first[:limit]
        if page:
            base = f"{self.url}{request.path}"
            extra = f"&tag={tag}" if tag else ""
            headers["Link"] = (
                f'<{base}?limit={limit}&max_id={page[-1]["id"]}{extra}>; rel="next", '
                f'<{base}?limit={limit}&min_id={page[0]["id"]}{extra}>; rel="prev"'
            )
        return _json(page, 200, headers)

    def _take_next(self) -> dict[str, Any] | None:
        with self.lock:
            if self._next >= len(self.statuses):
                return None
            self._next += 1
            return self.statuses[self._next - 1]

    def _stream(self, handler: _Handler, tag: str | None) -> None:
        with self.lock:
            self.stream_connections += 1
        sent = 0
        try:
            chunk = self._sse(handler)
            chunk(b":)\n")
            while not self.stopping.is_set():
                status = self._take_next()
                if status is None:
                    chunk(b":thump\n")
                    self.stopping.wait(self.heartbeat)
                    continue
                if not self._has_tag(status, tag):
                    continue
                data = orjson.dumps(status)
                chunk(b"event: update\ndata: " + data + b"\n\n")
                sent += 1
                with self.lock:
                    self.streamed += 1
                if self.edit_every and sent % self.edit_every == 0:
                    chunk(b"event: status.update\ndata: " + data + b"\n\n")
                if self.delete_every and sent % self.delete_every == 0:
                    with self.lock:
                        self._deleted.add(str(status["id"]))
                    chunk(b"event: delete\ndata: " + str(status["id"]).encode() + b"\n\n")
                if self.drop_after is not None and sent >= self.drop_after:
                    with self.lock:
                        dropping = self.max_drops is None or self.drops < self.max_drops
                        if dropping:
                            self.drops += 1
                    if dropping:
                        self.publish(self.publish_on_drop)
                        return  # no terminating chunk: the client sees a truncated body
                if self.stream_interval:
                    self.stopping.wait(self.stream_interval)
            chunk(b"")
        except OSError:
            return


class RedditServer(_LoopbackHTTP):
    """Reddit's OAuth token endpoint and subreddit listings.

    ``POST /api/v1/access_token`` takes HTTP basic auth ``client_id:client_secret`` and
    ``grant_type=client_credentials`` and returns a bearer token valid ``token_ttl`` seconds.
    ``GET /r/<sub>[+<sub>...]/new`` (submissions, ``t3``) and ``/r/<subs>/comments`` (``t1``) return
    ``Listing``s of ``things`` (default: the real ones), newest first, with ``limit`` (≤ 100),
    ``before``/``after`` fullname paging; ``/r/all/...`` lists every subreddit. Requests need the
    bearer token and a ``User-Agent`` containing ``require_user_agent`` (when set).

    Things are ordered by id; the oldest ``visible`` (default all) are listed, and every listing
    request without ``before``/``after`` (a new poll) reveals ``reveal_per_poll`` more. ``rate_limit``
    requests per ``rate_window`` seconds, announced in ``X-Ratelimit-Used/Remaining/Reset`` (seconds);
    beyond it: 429. ``revoke_tokens()`` invalidates issued tokens. Counters: ``token_requests``,
    ``requests``, ``throttled``.
    """

    def __init__(
        self,
        things: Sequence[dict[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str = "murmur-test-client",
        client_secret: str = "murmur-test-secret",  # noqa: S107 - a fake server's fake secret
        token_ttl: float = 3600.0,
        visible: int | None = None,
        reveal_per_poll: int = 0,
        rate_limit: int | None = None,
        rate_window: float = 600.0,
        require_user_agent: str | None = None,
    ) -> None:
        super().__init__(host, port)
        source = reddit_things_from_real_payloads() if things is None else list(things)
        self.things = sorted(source, key=lambda t: int(str(t["data"]["id"]), 36))
        self._visible = len(self.things) if visible is None else visible
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.reveal_per_poll = reveal_per_poll
        self.require_user_agent = require_user_agent
        self.rate = _RateWindow(rate_limit, rate_window)
        self._tokens: dict[str, float] = {}
        self.token_requests = 0
        self.requests = 0
        self.throttled = 0

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (the next API request answers 401)."""
        with self.lock:
            self._tokens.clear()

    def listed(self, kind: str, subreddits: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The things of ``kind`` a listing would show now, oldest first."""
        wanted = {s.lower() for s in subreddits} if subreddits and "all" not in subreddits else None
        with self.lock:
            visible = self.things[: self._visible]
        return [
            t
            for t in visible
            if t["kind"] == kind and (wanted is None or str(t["data"].get("subreddit", "")).lower() in wanted)
        ]

    def route(self, request: _Request, handler: _Handler) -> _Reply | None:
        agent = request.headers.get("user-agent", "")
        if self.require_user_agent and self.require_user_agent not in agent:
            return _json({"message": "Forbidden: send a descriptive User-Agent", "error": 403}, 403)
        if request.path == "/api/v1/access_token" and request.method == "POST":
            return self._token(request)
        parts = request.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "r" and parts[2] in ("new", "comments"):
            return self._listing(request, parts[1].split("+"), "t3" if parts[2] == "new" else "t1")
        return _json({"message": "Not Found", "error": 404}, 404)

    def _token(self, request: _Request) -> _Reply:
        with self.lock:
            self.token_requests += 1
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _json({"message": "Unauthorized", "error": 401}, 401)
        if parse_qs(request.body.decode()).get("grant_type") != ["client_credentials"]:
            return _json({"error": "unsupported_grant_type"}, 400)
        token = hashlib.sha256(f"{time.time_ns()}-{self.token_requests}".encode()).hexdigest()[:32]
        with self.lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        return _json(
            {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl, "scope": "*"}
        )

    def _listing(self, request: _Request, subreddits: list[str], kind: str) -> _Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self.lock:
            self.requests += 1
            valid = scheme.lower() == "bearer" and self._tokens.get(token, 0.0) > time.monotonic()
            allowed, remaining, reset_in = self.rate.take() if valid else (True, 0, 0.0)
            if not allowed:
                self.throttled += 1
        if not valid:
            return _json({"message": "Unauthorized", "error": 401}, 401)
        headers = {
            "X-Ratelimit-Used": str(self.rate.used),
            "X-Ratelimit-Remaining": f"{float(remaining):.1f}",
            "X-Ratelimit-Reset": str(max(1, round(reset_in))),
        }
        if not allowed:
            return _json({"message": "Too Many Requests", "error": 429}, 429, headers)
        q = request.query
        if "before" not in q and "after" not in q:
            with self.lock:
                self._visible = min(self._visible + self.reveal_per_poll, len(self.things))
        newest_first = list(reversed(self.listed(kind, subreddits)))
        limit = max(1, min(int(q.get("limit", "25")), 100))

        def num(fullname: str) -> int:
            return int(fullname.partition("_")[2] or fullname, 36)

        if "before" in q:
            newer = [t for t in newest_first if int(t["data"]["id"], 36) > num(q["before"])]
            page, rest_older = newer[-limit:], True
        else:
            if "after" in q:
                newest_first = [t for t in newest_first if int(t["data"]["id"], 36) < num(q["after"])]
            page, rest_older = newest_first[:limit], len(newest_first) > limit
        data = {
            "after": f"{kind}_{page[-1]['data']['id']}" if page and rest_older else None,
            "before": None,
            "dist": len(page),
            "modhash": "",
            "geo_filter": "",
            "children": page,
        }
        return _json({"kind": "Listing", "data": data}, 200, headers)


_FEED_TYPES = {
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".json": "application/feed+json",
}


class FeedServer(_LoopbackHTTP):
    """Feed documents at ``/feeds/<name>`` (default: the real ones) with conditional GETs.

    Each document has an ``ETag`` and a ``Last-Modified`` (turn either off with ``etag=False`` /
    ``last_modified=False``); a matching ``If-None-Match`` or a not-older ``If-Modified-Since`` gets
    304. ``set_feed(name, body)`` publishes a new version (new validators). ``failures={name: n}``
    answers the first n requests for that feed with 503. Counters per name: ``ok``,
    ``not_modified``, ``failed``.
    """

    def __init__(
        self,
        feeds: dict[str, bytes] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        etag: bool = True,
        last_modified: bool = True,
        failures: dict[str, int] | None = None,
    ) -> None:
        super().__init__(host, port)
        self.use_etag = etag
        self.use_last_modified = last_modified
        self._docs: dict[str, tuple[bytes, str, datetime]] = {}
        self._failures = dict(failures or {})
        self.ok: dict[str, int] = {}
        self.not_modified: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        base = datetime(2024, 1, 1, tzinfo=UTC)
        for name, body in (real_feed_documents() if feeds is None else feeds).items():
            self._docs[name] = (body, self._etag(body), base)

    @staticmethod
    def _etag(body: bytes) -> str:
        return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'

    @property
    def names(self) -> list[str]:
        return sorted(self._docs)

    def url_for(self, name: str) -> str:
        return f"{self.url}/feeds/{name}"

    @property
    def urls(self) -> list[str]:
        return [self.url_for(n) for n in self.names]

    def set_feed(self, name: str, body: bytes) -> None:
        with self.lock:
            previous = self._docs.get(name)
            modified = datetime.now(UTC).replace(microsecond=0)
            if previous is not None and modified <= previous[2]:
                modified = previous[2] + timedelta(seconds=1)
            self._docs[name] = (body, self._etag(body), modified)

    def route(self, request: _Request, handler: _Handler) -> _Reply | None:
        name = request.path.removeprefix("/feeds/")
        with self.lock:
            doc = self._docs.get(name) if request.path.startswith("/feeds/") else None
            if doc is not None and self._failures.get(name, 0) > 0:
                self._failures[name] -= 1
                self.failed[name] = self.failed.get(name, 0) + 1
                doc = None
                failing = True
            else:
                failing = False
        if failing:
            return _Reply(status=503, body=b"temporarily unavailable", content_type="text/plain")
        if doc is None:
            return _Reply(status=404, body=b"no such feed", content_type="text/plain")
        body, etag, modified = doc
        headers: dict[str, str] = {}
        if self.use_etag:
            headers["ETag"] = etag
        if self.use_last_modified:
            headers["Last-Modified"] = _http_date(modified)
        fresh = False
        if self.use_etag and "if-none-match" in request.headers:
            fresh = etag in [t.strip() for t in request.headers["if-none-match"].split(",")]
        elif self.use_last_modified and "if-modified-since" in request.headers:
            with contextlib.suppress(TypeError, ValueError):
                fresh = modified <= parsedate_to_datetime(request.headers["if-modified-since"])
        counter = self.not_modified if fresh else self.ok
        with self.lock:
            counter[name] = counter.get(name, 0) + 1
        if fresh:
            return _Reply(status=304, headers=headers)
        content_type = _FEED_TYPES.get(Path(name).suffix, "application/xml")
        return _Reply(body=body, content_type=content_type, headers=headers)
