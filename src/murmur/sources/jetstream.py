"""Bluesky through Jetstream: a WebSocket of JSON events, resumable by microsecond timestamp.

The source connects to ``<url>?wantedCollections=app.bsky.feed.post&cursor=<time_us>`` and yields
every message as it arrived (format ``jetstream``; the normalizer reads the record). ``identity`` and
``account`` events are passed on too (the normalizer gives nothing for them) so that the cursor
advances through them; ``stats.extra["kinds"]`` counts messages per kind.

Cursor: the largest ``time_us`` seen so far, as a decimal string. Jetstream replays from a cursor,
but its ordering is only approximately by time across instances and reconnects, so on every
(re)connect the source asks for ``rewind_seconds`` before its cursor and relies on idempotent writes
for the few events it sees twice (Jetstream's own advice for gapless playback). Positions never move
backwards: a replayed event carries the cursor already reached.

Options (``[[sources]]`` keys): ``url`` (required, ``ws://`` or ``wss://``, e.g.
``wss://jetstream2.us-east.bsky.network/subscribe``), ``collections`` (default
``["app.bsky.feed.post"]``), ``rewind_seconds`` (5), ``open_timeout`` (10 s), ``ping_interval``
(20 s), plus the reconnect options ``backoff_initial`` (1 s), ``backoff_max`` (60 s),
``max_attempts`` (None: retry forever). There is deliberately no option to follow particular
accounts (Jetstream's ``wantedDids``): murmur describes crowds, never persons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
import websockets
from websockets.asyncio.client import connect

from murmur.config import SourceConfig
from murmur.errors import SourceError
from murmur.sources.backoff import Backoff, RetryOptions, check_http_url, check_retry, parse_options, positive
from murmur.sources.base import SourceStats
from murmur.types import RawEvent

log = logging.getLogger(__name__)

FORMAT = "jetstream"


class JetstreamOptions(RetryOptions, forbid_unknown_fields=True, kw_only=True):
    url: str
    collections: list[str] = msgspec.field(default_factory=lambda: ["app.bsky.feed.post"])
    rewind_seconds: float = 5.0
    open_timeout: float = 10.0
    ping_interval: float | None = 20.0


class _Peek(msgspec.Struct):
    """The two envelope fields the source needs; the rest stays opaque bytes."""

    time_us: int
    kind: str = "commit"


_peek = msgspec.json.Decoder(_Peek)


def subscribe_url(base: str, collections: list[str], cursor: int | None) -> str:
    """``base`` with ``wantedCollections`` (repeated) and ``cursor`` added to its query string."""
    parts = urlsplit(base)
    params: list[tuple[str, str]] = [("wantedCollections", c) for c in collections]
    if cursor is not None:
        params.append(("cursor", str(max(cursor, 0))))
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/subscribe", query, parts.fragment))


def parse_cursor(source_id: str, cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    try:
        value = int(cursor)
    except ValueError:
        msg = (
            f"source {source_id!r}: stored cursor {cursor!r} is not a Jetstream time_us (whole "
            "microseconds); reset this source's cursor to start from the live stream"
        )
        raise SourceError(msg) from None
    return value


class JetstreamSource:
    """A Jetstream subscription; see the module docstring for options and cursor semantics."""

    def __init__(self, source_id: str, options: JetstreamOptions) -> None:
        self.id = source_id
        self.options = options
        self.stats = SourceStats()
        self.stats.extra["kinds"] = {}

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        opts = self.options
        position = parse_cursor(self.id, cursor)
        rewind_us = int(opts.rewind_seconds * 1_000_000)
        backoff = Backoff.from_options(opts)
        connected_before = False
        while True:
            start = None if position is None else position - rewind_us
            url = subscribe_url(opts.url, opts.collections, start)
            if connected_before:
                self.stats.reconnects += 1
            connected_before = True
            try:
                async with connect(
                    url,
                    open_timeout=opts.open_timeout,
                    ping_interval=opts.ping_interval,
                    compression=None,
                    proxy=None,
                    max_size=2**22,
                ) as ws:
                    log.info("%s: connected to %s", self.id, url)
                    while True:
                        message = await ws.recv(decode=False)
                        payload = message if isinstance(message, bytes) else message.encode()
                        try:
                            peek = _peek.decode(payload)
                        except msgspec.DecodeError as exc:
                            # Not an envelope at all: pass it on so the normalizer quarantines it
                            # with the reason; the cursor stays where it was.
                            self.stats.errors += 1
                            self.stats.last_error = f"undecodable Jetstream message: {exc}"
                            yield RawEvent(
                                self.id, FORMAT, payload, "" if position is None else str(position)
                            )
                            continue
                        backoff.reset()
                        position = peek.time_us if position is None else max(position, peek.time_us)
                        self.stats.lag_seconds = max(time.time() - peek.time_us / 1_000_000, 0.0)
                        kinds = self.stats.extra["kinds"]
                        if peek.kind in kinds or len(kinds) < 16:  # bounded, whatever a server sends
                            kinds[peek.kind] = kinds.get(peek.kind, 0) + 1
                        self.stats.events += 1
                        yield RawEvent(self.id, FORMAT, payload, str(position))
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                await backoff.wait(f"jetstream source {self.id!r} ({opts.url})", exc)


def jetstream_source(config: SourceConfig) -> JetstreamSource:
    """Factory registered as source type ``jetstream``."""
    options = parse_options(config, JetstreamOptions)
    options.url = check_http_url(config, "url", options.url, schemes=("ws", "wss"))
    positive(config, "rewind_seconds", options.rewind_seconds, allow_zero=True)
    positive(config, "open_timeout", options.open_timeout)
    positive(config, "ping_interval", options.ping_interval)
    check_retry(config, options)
    return JetstreamSource(config.id, options)
