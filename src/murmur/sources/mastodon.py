"""Mastodon: the streaming API (Server-Sent Events) with REST timelines to backfill.

On every (re)connect the source opens the stream first, then backfills over REST everything newer
than its cursor (``min_id`` paging, following ``Link: rel="prev"``, oldest first), then reads the
stream; the stream buffers meanwhile, so nothing published during the backfill is lost. Statuses
seen twice (backfill and stream) are emitted once. With ``streaming = false`` it polls the REST
timeline every ``poll_interval`` seconds instead.

Payloads (format ``mastodon``): the raw ``Status`` JSON for ``update`` and ``status.update`` (an
edit: the same post id, newer content), and ``{"event": "delete", "payload": "<id>", "uri": ...}``
for a streaming delete (``uri`` when the source saw that status in this process: the normalizer keys
posts by status uri).

Cursor: the highest status id seen (ids order by length, then text: numeric snowflakes on Mastodon,
flake ids elsewhere). Caveat: Mastodon gives remote statuses ids from their creation time, so a
status that federates late can get an id below the cursor; the stream still delivers it, a REST
backfill after a disconnect does not.

Rate limits: ``X-RateLimit-Remaining`` reaching 0 makes the source wait until ``X-RateLimit-Reset``;
a 429 waits the same way and retries.

Options: ``base_url`` (required, the instance, e.g. ``https://mastodon.social``), ``stream``
(``public`` | ``public:local`` | ``hashtag`` | ``hashtag:local``; default ``public``), ``tag`` (for the
hashtag streams), ``access_token`` or ``access_token_env`` (name of an environment variable holding
it), ``streaming`` (true), ``streaming_url`` (default ``base_url``), ``initial_backfill`` (statuses
fetched on a first start without cursor, 40), ``page_limit`` (40, the API maximum),
``max_backfill_pages`` (25; more pages behind counts a gap in ``stats.extra["gaps"]``),
``poll_interval`` (60 s, REST-only mode), ``max_polls`` (None; REST-only mode stops after that many
polls: one-shot backfills and tests), ``timeout`` (30 s for a whole REST answer, which may not pass
16 MiB; the stream's connection), ``stream_timeout`` (90 s without any byte,
heartbeats included, counts as a dead stream), ``rate_limit_max_wait`` (300 s), ``user_agent``, and
the reconnect options ``backoff_initial``, ``backoff_max``, ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import msgspec
import orjson

from murmur.config import SourceConfig
from murmur.errors import SourceError
from murmur.sources.backoff import (
    Backoff,
    RetryOptions,
    check_http_url,
    check_retry,
    config_error,
    parse_options,
    positive,
    retry_after,
    sleep_for_rate_limit,
)
from murmur.sources.base import SourceStats
from murmur.sources.fetch import IncompleteAnswer, fetch
from murmur.types import RawEvent

log = logging.getLogger(__name__)

FORMAT = "mastodon"
STREAMS = ("public", "public:local", "hashtag", "hashtag:local")
_REMEMBER_URIS = 50_000


class MastodonOptions(RetryOptions, forbid_unknown_fields=True, kw_only=True):
    base_url: str
    stream: str = "public"
    tag: str | None = None
    access_token: str | None = None
    access_token_env: str | None = None
    streaming: bool = True
    streaming_url: str | None = None
    initial_backfill: int = 40
    page_limit: int = 40
    max_backfill_pages: int = 25
    poll_interval: float = 60.0
    max_polls: int | None = None
    timeout: float = 30.0
    stream_timeout: float = 90.0
    rate_limit_max_wait: float = 300.0
    user_agent: str = "murmur (+https://github.com/murmur; social listening, public posts only)"


class _Peek(msgspec.Struct):
    id: str
    uri: str | None = None
    created_at: str | None = None


_peek = msgspec.json.Decoder(_Peek)
_peek_many = msgspec.json.Decoder(list[msgspec.Raw])


def id_key(status_id: str) -> tuple[int, str]:
    """Order of status ids: numeric strings compare as numbers, flake ids as text of equal length."""
    return (len(status_id), status_id)


class _Retryable(Exception):
    """A transient failure: back off and reconnect."""


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """Server-Sent Events from text lines: ``(event, data)``; comments (``:thump``) are skipped."""
    event = "message"
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event, "\n".join(data)


class MastodonSource:
    """A Mastodon public or hashtag timeline; see the module docstring."""

    def __init__(self, source_id: str, options: MastodonOptions, token: str | None) -> None:
        self.id = source_id
        self.options = options
        self._token = token
        self.stats = SourceStats()
        self.stats.extra.update(gaps=0, throttled=0, duplicates=0)
        self._position: str | None = None
        self._uris: OrderedDict[str, str | None] = OrderedDict()
        kind, _, scope = options.stream.partition(":")
        self._timeline = (
            "/api/v1/timelines/public" if kind == "public" else f"/api/v1/timelines/tag/{options.tag}"
        )
        self._timeline_params = {"local": "true"} if scope == "local" else {}
        self._stream_path = "/api/v1/streaming/" + options.stream.replace(":", "/")
        self._stream_params = {"tag": options.tag} if kind == "hashtag" and options.tag else {}

    # --- bookkeeping ------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"mastodon source {self.id!r} ({self.options.base_url})"

    def _seen(self, status_id: str, uri: str | None) -> bool:
        """Remember ``status_id`` (and its uri, for deletes); True when it was already emitted."""
        if status_id in self._uris:
            self._uris.move_to_end(status_id)
            return True
        self._uris[status_id] = uri
        if len(self._uris) > _REMEMBER_URIS:
            self._uris.popitem(last=False)
        return False

    def _status_event(self, payload: bytes, *, edit: bool = False) -> RawEvent | None:
        try:
            peek = _peek.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.stats.errors += 1
            self.stats.last_error = "a status without an id (passed on to be quarantined)"
            return RawEvent(self.id, FORMAT, payload, self._position or "")
        if self._seen(peek.id, peek.uri) and not edit:
            self.stats.extra["duplicates"] += 1
            return None
        if self._position is None or id_key(peek.id) > id_key(self._position):
            self._position = peek.id
        if peek.created_at:
            try:
                created = datetime.fromisoformat(peek.created_at)
                self.stats.lag_seconds = max((datetime.now(UTC) - created).total_seconds(), 0.0)
            except ValueError:
                pass
        self.stats.events += 1
        return RawEvent(self.id, FORMAT, payload, self._position)

    def _delete_event(self, status_id: str) -> RawEvent:
        uri = self._uris.get(status_id)
        body: dict[str, str] = {"event": "delete", "payload": status_id}
        if uri:
            body["uri"] = uri
        self.stats.events += 1
        return RawEvent(self.id, FORMAT, orjson.dumps(body), self._position or "")

    # --- HTTP -------------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        headers = {"User-Agent": self.options.user_agent, "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return httpx.AsyncClient(headers=headers, timeout=self.options.timeout, follow_redirects=True)

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status in (401, 403):
            msg = (
                f"{self._where()}: {response.request.url.path} answered {status}; "
                "check access_token / access_token_env (some instances require a token for public timelines)"
            )
            raise SourceError(msg)
        if status == 404:
            msg = f"{self._where()}: {response.request.url} does not exist (404); check base_url, stream, tag"
            raise SourceError(msg)
        if status >= 400:
            msg = f"{response.request.url.path} answered HTTP {status}"
            raise _Retryable(msg)

    def _rate_wait(self, response: httpx.Response) -> float:
        """Seconds to wait before the next REST request, from the ``X-RateLimit-*`` headers (-1: the
        limit is exhausted but the reset time is unknown)."""
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = response.headers.get("X-RateLimit-Reset")
        try:
            left = None if remaining is None else float(remaining)
        except ValueError:
            left = None
        self.stats.extra["ratelimit_remaining"] = left
        if response.status_code != 429 and (left is None or left > 0):
            return 0.0
        try:
            reset_at = datetime.fromisoformat(reset) if reset is not None else None
        except ValueError:
            reset_at = None
        if reset_at is None:  # a proxy's 429 may say Retry-After instead; else the backoff decides
            after = retry_after(response.headers.get("Retry-After"))
            return after + 0.05 if after > 0 else -1.0
        if reset_at.tzinfo is None:  # Mastodon writes "Z"; a bare time is read as UTC, not a crash
            reset_at = reset_at.replace(tzinfo=UTC)
        return max((reset_at - datetime.now(UTC)).total_seconds(), 0.0) + 0.05

    async def _get_page(
        self, client: httpx.AsyncClient, url: str, params: dict[str, str] | None
    ) -> httpx.Response:
        """One REST timeline request, waiting out rate limits (429 retried after the reset)."""
        while True:
            response = await fetch(client, "GET", url, deadline=self.options.timeout, params=params)
            wait = self._rate_wait(response)
            if response.status_code == 429:
                self.stats.extra["throttled"] += 1
                if wait < 0:
                    msg = "rate limited (429) without X-RateLimit-Reset"
                    raise _Retryable(msg)
                await sleep_for_rate_limit(self._where(), wait, max_wait=self.options.rate_limit_max_wait)
                continue
            self._check(response)
            if wait > 0:
                await sleep_for_rate_limit(self._where(), wait, max_wait=self.options.rate_limit_max_wait)
            return response

    def _page(self, response: httpx.Response) -> list[bytes]:
        try:
            return [bytes(raw) for raw in _peek_many.decode(response.content)]
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            msg = f"{response.request.url.path} did not return a JSON array: {exc}"
            raise _Retryable(msg) from None

    async def _backfill(self, client: httpx.AsyncClient) -> AsyncIterator[RawEvent]:
        opts = self.options
        url = opts.base_url + self._timeline
        params: dict[str, str] | None
        if self._position is None and opts.initial_backfill == 0:
            # Start from "now": remember the newest id so a reconnect backfills from there.
            page = self._page(await self._get_page(client, url, dict(self._timeline_params, limit="1")))
            if page:
                self._position = _peek.decode(page[0]).id
            return
        if self._position is None:
            # A first start: the newest ``initial_backfill`` statuses, paging back (``max_id``).
            collected: list[bytes] = []
            params = dict(self._timeline_params, limit=str(opts.page_limit))
            while len(collected) < opts.initial_backfill:
                response = await self._get_page(client, url, params)
                page = self._page(response)
                collected.extend(page)
                nxt = response.links.get("next", {}).get("url")
                if len(page) < opts.page_limit or not nxt:
                    break
                url, params = nxt, None
            for payload in reversed(collected[: opts.initial_backfill]):
                event = self._status_event(payload)
                if event is not None:
                    yield event
            return
        params = dict(self._timeline_params, limit=str(opts.page_limit), min_id=self._position or "")
        for _ in range(opts.max_backfill_pages):
            response = await self._get_page(client, url, params)
            page = self._page(response)
            for payload in reversed(page):  # pages come newest first
                event = self._status_event(payload)
                if event is not None:
                    yield event
            prev = response.links.get("prev", {}).get("url")
            if len(page) < opts.page_limit or not prev:
                return
            url, params = prev, None
        self.stats.extra["gaps"] += 1
        pages = opts.max_backfill_pages
        log.warning(
            "%s: more than %d backfill pages behind; the rest is skipped (a gap)", self._where(), pages
        )

    @staticmethod
    async def _alive(lines: AsyncIterator[str], backoff: Backoff) -> AsyncIterator[str]:
        """``lines``, resetting ``backoff`` from the second line on (Mastodon greets with ``:)``, then
        sends ``:thump`` heartbeats): a quiet stream that lived and was then closed is no failed
        attempt, or ``max_attempts`` quiet drops in a row, over days, would stop the source."""
        first = True
        async for line in lines:
            if not first:
                backoff.reset()
            first = False
            yield line

    async def _stream(self, client: httpx.AsyncClient, backoff: Backoff) -> AsyncIterator[RawEvent]:
        opts = self.options
        url = (opts.streaming_url or opts.base_url) + self._stream_path
        timeout = httpx.Timeout(opts.timeout, read=opts.stream_timeout)
        headers = {"Accept": "text/event-stream"}
        async with client.stream(
            "GET", url, params=self._stream_params, headers=headers, timeout=timeout
        ) as response:
            self._check(response)
            async for event in self._backfill(client):
                yield event
            async for name, data in parse_sse(self._alive(response.aiter_lines(), backoff)):
                if name in ("update", "status.update"):
                    raw = self._status_event(data.encode(), edit=name == "status.update")
                    if raw is not None:
                        yield raw
                elif name == "delete":
                    yield self._delete_event(data.strip())
        msg = "the stream ended"
        raise _Retryable(msg)

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        opts = self.options
        self._position = cursor or None
        backoff = Backoff.from_options(opts)
        polls = 0
        attempts = 0
        async with self._client() as client:
            while True:
                try:
                    if attempts:
                        self.stats.reconnects += 1
                    attempts += 1
                    if opts.streaming:
                        async for event in self._stream(client, backoff):
                            yield event
                    else:
                        async for event in self._backfill(client):
                            yield event
                        backoff.reset()
                        polls += 1
                        if opts.max_polls is not None and polls >= opts.max_polls:
                            return
                        attempts = 0
                        await asyncio.sleep(opts.poll_interval)
                except (_Retryable, httpx.RequestError, IncompleteAnswer) as exc:
                    self.stats.errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    await backoff.wait(self._where(), exc)


def mastodon_source(config: SourceConfig) -> MastodonSource:
    """Factory registered as source type ``mastodon``."""
    options = parse_options(config, MastodonOptions)
    options.base_url = check_http_url(config, "base_url", options.base_url)
    if options.streaming_url is not None:
        options.streaming_url = check_http_url(config, "streaming_url", options.streaming_url)
    if options.stream not in STREAMS:
        raise config_error(config, "stream", f"must be one of {', '.join(STREAMS)}, got {options.stream!r}")
    if options.stream.startswith("hashtag"):
        if not options.tag or not options.tag.strip("#"):
            problem = f"is required for stream {options.stream!r} (a hashtag, '#' optional)"
            raise config_error(config, "tag", problem)
        options.tag = options.tag.strip().lstrip("#")
    if not 1 <= options.page_limit <= 40:
        problem = f"must be between 1 and 40 (the API maximum), got {options.page_limit}"
        raise config_error(config, "page_limit", problem)
    positive(config, "initial_backfill", options.initial_backfill, allow_zero=True)
    positive(config, "max_backfill_pages", options.max_backfill_pages)
    positive(config, "poll_interval", options.poll_interval, allow_zero=True)
    positive(config, "max_polls", options.max_polls)
    positive(config, "timeout", options.timeout)
    positive(config, "stream_timeout", options.stream_timeout)
    positive(config, "rate_limit_max_wait", options.rate_limit_max_wait, allow_zero=True)
    check_retry(config, options)
    token = options.access_token
    if options.access_token_env:
        token = os.environ.get(options.access_token_env)
        if not token:
            problem = (
                f"names the environment variable {options.access_token_env!r}, which is not set or empty"
            )
            raise config_error(config, "access_token_env", problem)
    return MastodonSource(config.id, options, token)


__all__ = ["MastodonOptions", "MastodonSource", "mastodon_source", "parse_sse"]
