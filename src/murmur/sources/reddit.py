"""Reddit through the Data API: OAuth client credentials, then polling subreddit listings.

Every ``poll_interval`` seconds the source reads ``/r/<sub>+<sub>.../new`` (submissions) and/or
``/comments`` (comments) newest first, paging back with ``after`` until it reaches the newest thing
it has already emitted, and emits what is new oldest first. Each payload is one thing
``{"kind": "t3" | "t1", "data": {...}}`` as Reddit sent it (format ``reddit``).

Cursor: JSON ``{"<listing>": "<fullname>"}``, the newest fullname emitted per listing. Reddit ids are
base-36 counters, so "newer" is "larger id"; unlike ``before=<fullname>`` paging this keeps working
when that thing is deleted. A first start without cursor reads ``initial_pages`` pages. When more
than ``max_pages`` pages arrived between two polls, the rest is skipped and counted in
``stats.extra["gaps"]`` (Reddit lists at most ~1000 things anyway).

Rate limits: when ``X-Ratelimit-Remaining`` drops below 1 the source sleeps ``X-Ratelimit-Reset``
seconds; a 429 waits the same way and retries. A token is fetched with HTTP basic auth
(``POST <auth_url>/api/v1/access_token``, ``grant_type=client_credentials``) and renewed before it
expires or when a request answers 401.

Options: ``subreddits`` (required, names without ``r/``), ``user_agent`` (required, Reddit's rule:
``<platform>:<app id>:<version> (by /u/<username>)``), ``client_id`` / ``client_id_env`` and
``client_secret`` / ``client_secret_env`` (required, one of each pair; ``*_env`` names an environment
variable), ``listings`` (``["new"]``; also ``"comments"``), ``base_url`` (``https://oauth.reddit.com``),
``auth_url`` (``https://www.reddit.com``), ``limit`` (100 per page), ``initial_pages`` (1),
``max_pages`` (10), ``poll_interval`` (60 s), ``max_polls`` (None: forever; one-shot runs and tests),
``timeout`` (30 s for a whole answer; an answer over 16 MiB is not read), ``rate_limit_max_wait``
(600 s), and the reconnect options ``backoff_initial``, ``backoff_max``, ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

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

FORMAT = "reddit"
LISTINGS = {"new": "t3", "comments": "t1"}
_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")


class RedditOptions(RetryOptions, forbid_unknown_fields=True, kw_only=True):
    subreddits: list[str]
    user_agent: str
    client_id: str | None = None
    client_id_env: str | None = None
    client_secret: str | None = None
    client_secret_env: str | None = None
    listings: list[str] = msgspec.field(default_factory=lambda: ["new"])
    base_url: str = "https://oauth.reddit.com"
    auth_url: str = "https://www.reddit.com"
    limit: int = 100
    initial_pages: int = 1
    max_pages: int = 10
    poll_interval: float = 60.0
    max_polls: int | None = None
    timeout: float = 30.0
    rate_limit_max_wait: float = 600.0


class _ThingData(msgspec.Struct):
    id: str
    created_utc: float | None = None


class _Thing(msgspec.Struct):
    kind: str
    data: _ThingData


class _ListingData(msgspec.Struct):
    children: list[msgspec.Raw] = msgspec.field(default_factory=list)
    after: str | None = None


class _Listing(msgspec.Struct):
    data: _ListingData


_thing = msgspec.json.Decoder(_Thing)
_listing = msgspec.json.Decoder(_Listing)


class _Token(msgspec.Struct):
    access_token: str
    expires_in: float = 3600.0


class _Retryable(Exception):
    """A transient failure: back off and poll again."""


def fullname_number(fullname: str) -> int:
    """The base-36 counter in ``t3_abc`` (ids grow over time)."""
    return int(fullname.partition("_")[2] or fullname, 36)


class RedditSource:
    """Polls subreddit listings; see the module docstring."""

    def __init__(self, source_id: str, options: RedditOptions, client_id: str, client_secret: str) -> None:
        self.id = source_id
        self.options = options
        self._auth = (client_id, client_secret)
        self.stats = SourceStats()
        self.stats.extra.update(gaps=0, throttled=0, polls=0)
        self._token: str | None = None
        self._token_expires = 0.0
        self._newest: dict[str, str] = {}

    def _where(self) -> str:
        return f"reddit source {self.id!r}"

    def _parse_cursor(self, cursor: str | None) -> dict[str, str]:
        if not cursor:
            return {}
        try:
            value = orjson.loads(cursor)
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise TypeError
            for v in value.values():
                fullname_number(v)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            msg = (
                f"{self._where()}: stored cursor {cursor[:80]!r} is not a JSON object of listing -> "
                "fullname; reset this source's cursor to start over"
            )
            raise SourceError(msg) from None
        return {str(k): v for k, v in value.items()}

    async def _authenticate(self, client: httpx.AsyncClient) -> None:
        url = self.options.auth_url + "/api/v1/access_token"
        response = await fetch(
            client,
            "POST",
            url,
            deadline=self.options.timeout,
            auth=self._auth,
            data={"grant_type": "client_credentials"},
        )
        if response.status_code in (400, 401, 403):
            msg = (
                f"{self._where()}: {url} refused the credentials ({response.status_code}: "
                f"{response.text[:200]!r}); check client_id and client_secret (an app registered at "
                "reddit.com/prefs/apps) and that user_agent describes the client"
            )
            raise SourceError(msg)
        if response.status_code >= 300:
            msg = f"token request answered HTTP {response.status_code}"
            raise _Retryable(msg)
        try:
            token = msgspec.json.decode(response.content, type=_Token)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            msg = f"token response is not the expected JSON: {exc}"
            raise _Retryable(msg) from None
        self._token = token.access_token
        # Renew a minute early (or at 90% of a short lifetime).
        self._token_expires = time.monotonic() + max(token.expires_in - min(60.0, token.expires_in / 10), 0.0)

    async def _get(self, client: httpx.AsyncClient, path: str, params: dict[str, str]) -> bytes:
        """One authenticated API request, waiting out rate limits."""
        renewed = False
        while True:
            if self._token is None or time.monotonic() >= self._token_expires:
                await self._authenticate(client)
                renewed = True
            response = await fetch(
                client,
                "GET",
                self.options.base_url + path,
                deadline=self.options.timeout,
                params=params,
                headers={"Authorization": f"bearer {self._token}"},
            )
            wait = self._rate_wait(response)
            if response.status_code == 401 and not renewed:
                self._token = None
                continue
            if response.status_code == 429:
                self.stats.extra["throttled"] += 1
                if wait < 0:
                    msg = "rate limited (429) without X-Ratelimit-Reset"
                    raise _Retryable(msg)
                await sleep_for_rate_limit(self._where(), wait, max_wait=self.options.rate_limit_max_wait)
                continue
            if response.status_code in (401, 403, 404):
                msg = (
                    f"{self._where()}: {path} answered {response.status_code}; check subreddits, "
                    "listings and the app's credentials"
                )
                raise SourceError(msg)
            if response.status_code >= 300:
                msg = f"{path} answered HTTP {response.status_code}"
                raise _Retryable(msg)
            if wait > 0:
                await sleep_for_rate_limit(self._where(), wait, max_wait=self.options.rate_limit_max_wait)
            return response.content

    def _rate_wait(self, response: httpx.Response) -> float:
        """Seconds to sleep before the next request (-1: exhausted, reset time unknown)."""
        remaining = response.headers.get("X-Ratelimit-Remaining")
        reset = response.headers.get("X-Ratelimit-Reset")
        used = response.headers.get("X-Ratelimit-Used")
        if used is not None and used.isdigit():
            self.stats.extra["ratelimit_used"] = int(used)
        try:
            if remaining is not None:
                self.stats.extra["ratelimit_remaining"] = float(remaining)
            exhausted = response.status_code == 429 or (remaining is not None and float(remaining) < 1)
            if not exhausted:
                return 0.0
            if reset is not None:
                return float(reset) + 0.05
        except ValueError:
            pass
        after = retry_after(response.headers.get("Retry-After"))  # a proxy's 429 may say this instead
        return after + 0.05 if after > 0 else -1.0

    async def _poll(self, client: httpx.AsyncClient, listing: str) -> list[tuple[int, bytes, _Thing]]:
        """The things of ``listing`` newer than the cursor, oldest first."""
        opts = self.options
        newest = self._newest.get(listing)
        floor = fullname_number(newest) if newest else None
        path = f"/r/{'+'.join(opts.subreddits)}/{listing}"
        found: dict[int, tuple[bytes, _Thing]] = {}
        after: str | None = None
        pages = opts.initial_pages if floor is None else opts.max_pages
        for page in range(pages):
            params = {"limit": str(opts.limit), "raw_json": "1"}
            if after:
                params["after"] = after
            body = await self._get(client, path, params)
            try:
                data = _listing.decode(body).data
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                msg = f"{path} did not return a Listing: {exc}"
                raise _Retryable(msg) from None
            reached = False
            for raw in data.children:
                try:
                    thing = _thing.decode(raw)
                    number = int(thing.data.id, 36)
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                    self.stats.errors += 1
                    self.stats.last_error = "a listing child without a usable kind/id was skipped"
                    continue
                if floor is not None and number <= floor:
                    reached = True
                    continue
                found.setdefault(number, (bytes(raw), thing))
            after = data.after
            if reached or not after or not data.children:
                break
            if floor is not None and page == pages - 1:
                self.stats.extra["gaps"] += 1
                log.warning(
                    "%s: more than %d pages of %s since the last poll; older ones skipped",
                    self.id,
                    pages,
                    path,
                )
        return [(n, raw, thing) for n, (raw, thing) in sorted(found.items())]

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        opts = self.options
        self._newest = self._parse_cursor(cursor)
        backoff = Backoff.from_options(opts)
        polls = 0
        headers = {"User-Agent": opts.user_agent, "Accept": "application/json"}
        async with httpx.AsyncClient(headers=headers, timeout=opts.timeout) as client:
            while True:
                try:
                    for listing in opts.listings:
                        for _, raw, thing in await self._poll(client, listing):
                            self._newest[listing] = f"{thing.kind}_{thing.data.id}"
                            if thing.data.created_utc is not None:
                                self.stats.lag_seconds = max(time.time() - thing.data.created_utc, 0.0)
                            self.stats.events += 1
                            yield RawEvent(self.id, FORMAT, raw, orjson.dumps(self._newest).decode())
                except (_Retryable, httpx.RequestError, IncompleteAnswer) as exc:
                    self.stats.errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    self.stats.reconnects += 1
                    await backoff.wait(self._where(), exc)
                    continue
                backoff.reset()
                polls += 1
                self.stats.extra["polls"] = polls
                if opts.max_polls is not None and polls >= opts.max_polls:
                    return
                await asyncio.sleep(opts.poll_interval)


def _secret(config: SourceConfig, options: RedditOptions, key: str) -> str:
    direct: Any = getattr(options, key)
    env_name: Any = getattr(options, f"{key}_env")
    if env_name:
        value = os.environ.get(str(env_name))
        if not value:
            raise config_error(
                config, f"{key}_env", f"names the environment variable {env_name!r}, which is not set"
            )
        return value
    if not direct:
        raise config_error(config, key, f"is required (or {key}_env naming an environment variable)")
    return str(direct)


def reddit_source(config: SourceConfig) -> RedditSource:
    """Factory registered as source type ``reddit``."""
    options = parse_options(config, RedditOptions)
    options.base_url = check_http_url(config, "base_url", options.base_url)
    options.auth_url = check_http_url(config, "auth_url", options.auth_url)
    subs = [s.strip().removeprefix("/").removeprefix("r/") for s in options.subreddits]
    if not subs:
        raise config_error(config, "subreddits", "must name at least one subreddit")
    for sub in subs:
        if not _SUBREDDIT.match(sub):
            raise config_error(
                config, "subreddits", f"{sub!r} is not a subreddit name (letters, digits, '_')"
            )
    options.subreddits = subs
    if not options.user_agent.strip():
        problem = "must describe the client, e.g. 'linux:org.example.murmur:0.1 (by /u/you)' (Reddit's rule)"
        raise config_error(config, "user_agent", problem)
    if not options.listings or any(k not in LISTINGS for k in options.listings):
        raise config_error(
            config, "listings", f"must be a non-empty list of {sorted(LISTINGS)}, got {options.listings}"
        )
    if not 1 <= options.limit <= 100:
        raise config_error(
            config, "limit", f"must be between 1 and 100 (the API maximum), got {options.limit}"
        )
    positive(config, "initial_pages", options.initial_pages)
    positive(config, "max_pages", options.max_pages)
    positive(config, "poll_interval", options.poll_interval, allow_zero=True)
    positive(config, "max_polls", options.max_polls)
    positive(config, "timeout", options.timeout)
    positive(config, "rate_limit_max_wait", options.rate_limit_max_wait, allow_zero=True)
    check_retry(config, options)
    client_id = _secret(config, options, "client_id")
    client_secret = _secret(config, options, "client_secret")
    return RedditSource(config.id, options, client_id, client_secret)
