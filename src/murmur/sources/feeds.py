"""RSS / Atom / JSON Feed: poll a list of feed URLs with conditional GETs.

Every ``interval`` seconds each feed is fetched with ``If-None-Match`` / ``If-Modified-Since`` from
its last ``ETag`` / ``Last-Modified``; 304 means nothing new. A 200 whose body is byte-identical to
the last one, or whose items were all seen already (feeds that ignore conditional requests, or bump
only ``lastBuildDate``), emits nothing either. Otherwise the whole document is one event (format
``feed``; the normalizer turns it into one post per item, idempotently).

A failing feed (network error, HTTP error) is retried after its own exponential backoff with full
jitter (``backoff_initial`` .. ``backoff_max``) while the other feeds keep their schedule; it never
stops the source. A 429 or 503 with ``Retry-After`` is not retried before that time (at most
``backoff_max``). ``stats.extra["failing"]`` counts feeds in backoff now.

Cursor: JSON ``{"seq": n, "feeds": {url: {"etag", "last_modified", "hash", "seen"}}}`` where ``seq``
counts emitted documents (it only grows), ``hash`` is the last body's digest and ``seen`` holds short
digests of the last document's item ids (at most ``max_seen_items``), so a restart neither fetches
unchanged feeds again nor re-emits a document whose items are all stored. A document with more items
than that is emitted whenever its body changes (the store keeps each item once).

Options: ``urls`` (required, http/https), ``interval`` (300 s), ``max_polls`` (None: forever;
one-shot runs and tests), ``timeout`` (30 s for the whole answer), ``concurrency`` (4 feeds fetched
at once), ``user_agent``, ``max_seen_items`` (1000), ``backoff_initial`` (60 s), ``backoff_max``
(3600 s).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from murmur.config import SourceConfig
from murmur.errors import PayloadError, SourceError
from murmur.sources.backoff import Backoff, check_http_url, config_error, parse_options, positive, retry_after
from murmur.sources.base import SourceStats
from murmur.sources.fetch import AnswerTimeout, AnswerTooLarge, fetch
from murmur.sources.normalize._common import MAX_FEED_BYTES
from murmur.sources.normalize.feed import normalize_feed
from murmur.types import Draft, RawEvent
from murmur.urls import scrub_secrets

log = logging.getLogger(__name__)

FORMAT = "feed"


class FeedOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    urls: list[str]
    interval: float = 300.0
    max_polls: int | None = None
    timeout: float = 30.0
    concurrency: int = 4
    user_agent: str = "murmur feed poller (+https://github.com/murmur; conditional GETs)"
    max_seen_items: int = 1000
    backoff_initial: float = 60.0
    backoff_max: float = 3600.0


class FeedState(msgspec.Struct, omit_defaults=True):
    """What the cursor keeps per feed."""

    etag: str | None = None
    last_modified: str | None = None
    hash: str | None = None
    seen: str = ""
    """Item-id digests of the last document, 8 hex characters each, concatenated."""


class _Cursor(msgspec.Struct):
    seq: int = 0
    feeds: dict[str, FeedState] = msgspec.field(default_factory=dict)


@dataclass(slots=True)
class _Schedule:
    backoff: Backoff
    next_try: float = 0.0


@dataclass(slots=True)
class _Fetched:
    """The outcome of one fetch: a new state, and the body when it should be emitted."""

    url: str
    state: FeedState | None = None
    body: bytes | None = None
    error: str | None = None
    retry_after: float = 0.0
    """Seconds the server asked us to wait (``Retry-After`` on a 429 or 503)."""
    extra: dict[str, Any] = field(default_factory=dict)


def _digest(data: bytes, size: int = 8) -> str:
    return hashlib.blake2b(data, digest_size=size).hexdigest()


def _split(seen: str) -> set[str]:
    return {seen[i : i + 8] for i in range(0, len(seen), 8)}


def _item_digests(body: bytes) -> str | None:
    """Short digests of the document's item ids (as the ``feed`` normalizer names them), concatenated;
    None when the document cannot be read (it is emitted anyway, to be quarantined with the reason)."""
    try:
        items = normalize_feed(body)
    except PayloadError:
        return None
    return "".join(_digest(d.post_id.encode(), 4) for d in items if isinstance(d, Draft))


class FeedSource:
    """Polls feed URLs; see the module docstring."""

    def __init__(self, source_id: str, options: FeedOptions) -> None:
        self.id = source_id
        self.options = options
        self.stats = SourceStats()
        self.stats.extra.update(not_modified=0, unchanged=0, failing=0, polls=0)

    def _parse_cursor(self, cursor: str | None) -> _Cursor:
        if not cursor:
            return _Cursor()
        try:
            return msgspec.json.decode(cursor, type=_Cursor)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            msg = f"feed source {self.id!r}: stored cursor is not a feed cursor ({exc}); reset the cursor"
            raise SourceError(msg) from None

    async def _fetch(self, client: httpx.AsyncClient, url: str, state: FeedState) -> _Fetched:
        headers: dict[str, str] = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        try:
            # ``timeout`` bounds the whole answer, not only each read: a server that trickles its
            # body would otherwise hold this poll, and every other feed with it, for ever.
            response = await fetch(
                client, "GET", url, deadline=self.options.timeout, max_bytes=MAX_FEED_BYTES, headers=headers
            )
        except httpx.HTTPError as exc:
            return _Fetched(url, error=f"{type(exc).__name__}: {exc}")
        except AnswerTimeout:
            return _Fetched(url, error=f"no complete answer within {self.options.timeout:g} s (timeout)")
        except AnswerTooLarge:
            return _Fetched(
                url, error=f"the feed is larger than {MAX_FEED_BYTES:,} bytes (a feed, or the wrong URL?)"
            )
        if response.status_code == 304:
            return _Fetched(url, extra={"not_modified": 1})
        if response.status_code != 200:
            status = response.status_code
            wait = retry_after(response.headers.get("Retry-After")) if status in (429, 503) else 0.0
            return _Fetched(url, error=f"HTTP {status}", retry_after=wait)
        body = response.content
        new = FeedState(
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            hash=_digest(body),
            seen=state.seen,
        )
        if new.hash == state.hash:
            return _Fetched(url, state=new, extra={"unchanged": 1})
        digests = await asyncio.to_thread(_item_digests, body)
        if digests is not None:
            # Remember at most max_seen_items, but compare all: in a longer feed a new item may sit
            # past the remembered ones (oldest first), and a document not wholly remembered is emitted.
            new.seen = digests[: 8 * self.options.max_seen_items]
            if digests and _split(digests) <= _split(state.seen):
                return _Fetched(url, state=new, extra={"unchanged": 1})
        return _Fetched(url, state=new, body=body)

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        opts = self.options
        current = self._parse_cursor(cursor)
        schedules = {
            url: _Schedule(Backoff(initial=opts.backoff_initial, maximum=opts.backoff_max))
            for url in opts.urls
        }
        headers = {"User-Agent": opts.user_agent}
        polls = 0
        async with httpx.AsyncClient(headers=headers, timeout=opts.timeout, follow_redirects=True) as client:
            while True:
                started = time.monotonic()
                due = [u for u in opts.urls if schedules[u].next_try <= started]
                for i in range(0, len(due), opts.concurrency):
                    chunk = due[i : i + opts.concurrency]
                    results = await asyncio.gather(
                        *(self._fetch(client, u, current.feeds.get(u, FeedState())) for u in chunk)
                    )
                    for fetched in results:
                        event = self._apply(current, schedules[fetched.url], fetched)
                        if event is not None:
                            yield event
                self.stats.extra["failing"] = sum(1 for s in schedules.values() if s.backoff.failures)
                polls += 1
                self.stats.extra["polls"] = polls
                if opts.max_polls is not None and polls >= opts.max_polls:
                    return
                await asyncio.sleep(max(opts.interval - (time.monotonic() - started), 0.0))

    def _apply(self, current: _Cursor, schedule: _Schedule, fetched: _Fetched) -> RawEvent | None:
        """Record one fetch's outcome; the event to emit, if any (its position includes this feed)."""
        for key, n in fetched.extra.items():
            self.stats.extra[key] += n
        if fetched.error is not None:
            self.stats.errors += 1
            self.stats.last_error = scrub_secrets(f"{fetched.url}: {fetched.error}")
            delay = schedule.backoff.next_delay()
            # A server that said how long to wait is not asked sooner (at most backoff_max).
            delay = max(delay, min(fetched.retry_after, schedule.backoff.maximum))
            schedule.next_try = time.monotonic() + delay
            log.warning("feed %s; next try in %.1f s", self.stats.last_error, delay)
            return None
        schedule.backoff.reset()
        schedule.next_try = 0.0
        if fetched.state is not None:
            current.feeds[fetched.url] = fetched.state
        if fetched.body is None:
            return None
        current.seq += 1
        self.stats.events += 1
        position = msgspec.json.encode(current).decode()
        return RawEvent(self.id, FORMAT, fetched.body, position)


def feed_source(config: SourceConfig) -> FeedSource:
    """Factory registered as source type ``feed``."""
    options = parse_options(config, FeedOptions)
    if not options.urls:
        raise config_error(config, "urls", "must list at least one feed URL")
    options.urls = list(dict.fromkeys(check_http_url(config, "urls", u, strip=False) for u in options.urls))
    positive(config, "interval", options.interval, allow_zero=True)
    positive(config, "max_polls", options.max_polls)
    positive(config, "timeout", options.timeout)
    positive(config, "concurrency", options.concurrency)
    positive(config, "max_seen_items", options.max_seen_items, allow_zero=True)
    positive(config, "backoff_initial", options.backoff_initial)
    positive(config, "backoff_max", options.backoff_max)
    return FeedSource(config.id, options)
