"""Reddit source against the local OAuth + listings server (real things): polling, tokens, rate limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest

from murmur.config import SourceConfig
from murmur.errors import SourceError
from murmur.sources.normalize import normalize
from murmur.sources.reddit import RedditSource, reddit_source
from murmur.testing import has_shared_data
from murmur.testing_servers import RedditServer, reddit_things_from_real_payloads
from murmur.types import Draft, RawEvent
from tests.sources.conformance import collect

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real recorded payloads)")

SUBS = ["MapPorn", "modnews"]
UA = "test:murmur.tests:0.1 (by /u/nobody)"


@pytest.fixture(scope="module")
def things() -> list[dict[str, Any]]:
    return reddit_things_from_real_payloads(subreddits=SUBS)


def source(server: RedditServer, **options: Any) -> RedditSource:
    opts: dict[str, Any] = {
        "subreddits": SUBS,
        "user_agent": UA,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "base_url": server.url,
        "auth_url": server.url,
        "limit": 10,
        "poll_interval": 0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    opts.update(options)
    return reddit_source(SourceConfig(id="rd", type="reddit", options=opts))


def run(src: RedditSource, cursor: str | None = None) -> list[RawEvent]:
    return asyncio.run(collect(src, cursor, wanted=None, identity=name, quiet=1, limit_s=30))


def name(event: RawEvent) -> str:
    return str(orjson.loads(event.payload)["data"]["name"])


def test_polls_pick_up_new_things_exactly_once_oldest_first(things: list[dict[str, Any]]) -> None:
    with RedditServer(things, visible=20, reveal_per_poll=25, require_user_agent=UA) as server:
        src = source(server, initial_pages=50, max_polls=8)
        got = run(src)
        expected = [t["data"]["name"] for t in server.listed("t3", SUBS)]
        assert server.token_requests == 1
    assert [name(e) for e in got] == expected
    assert len(expected) > 40
    assert src.stats.extra["polls"] == 8
    assert src.stats.lag_seconds is not None
    assert src.stats.lag_seconds > 0
    drafts = [d for e in got for d in normalize("reddit", e.payload) if isinstance(d, Draft)]
    assert {d.community for d in drafts} <= set(SUBS)


def test_a_first_start_reads_only_initial_pages(things: list[dict[str, Any]]) -> None:
    with RedditServer(things) as server:
        got = run(source(server, initial_pages=1, max_polls=1, listings=["comments"]))
        newest = [t["data"]["name"] for t in server.listed("t1", SUBS)][-10:]
    assert [name(e) for e in got] == newest


def test_rate_limit_headers_make_the_source_sleep(things: list[dict[str, Any]]) -> None:
    with RedditServer(things, rate_limit=2, rate_window=1.0) as server:
        src = source(server, initial_pages=50, max_polls=1, limit=25)
        started = time.perf_counter()
        got = run(src)
        elapsed = time.perf_counter() - started
        assert server.requests == 3  # 66 submissions, 25 a page
        assert server.throttled == 0  # it slept when X-Ratelimit-Remaining reached 0
    assert len(got) == len(server.listed("t3", SUBS))
    assert elapsed >= 0.7, elapsed


def test_429_is_waited_out_and_retried() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/access_token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        calls.append(time.perf_counter())
        if len(calls) == 1:
            return httpx.Response(
                429, headers={"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "0.3"}, json={}
            )
        return httpx.Response(
            200, headers={"X-Ratelimit-Remaining": "99"}, json={"kind": "Listing", "data": {}}
        )

    with RedditServer([]) as server:
        src = source(server)

    async def go() -> bytes:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await src._get(client, "/r/MapPorn/new", {"limit": "1"})

    assert orjson.loads(asyncio.run(go()))["kind"] == "Listing"
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.3
    assert src.stats.extra["throttled"] == 1


def test_429_with_only_retry_after_is_waited_out() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/access_token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        calls.append(time.perf_counter())
        if len(calls) == 1:  # a proxy's 429: no X-Ratelimit-* headers
            return httpx.Response(429, headers={"Retry-After": "1"}, json={})
        return httpx.Response(
            200, headers={"X-Ratelimit-Remaining": "99"}, json={"kind": "Listing", "data": {}}
        )

    with RedditServer([]) as server:
        src = source(server)

    async def go() -> bytes:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await src._get(client, "/r/MapPorn/new", {"limit": "1"})

    assert orjson.loads(asyncio.run(go()))["kind"] == "Listing"
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.95


def test_a_revoked_token_is_renewed_once(things: list[dict[str, Any]]) -> None:
    with RedditServer(things, visible=30, reveal_per_poll=10) as server:
        src = source(server, initial_pages=50, max_polls=3)

        async def go() -> list[RawEvent]:
            got: list[RawEvent] = []
            async for event in src.events(None):
                if not got:
                    server.revoke_tokens()
                got.append(event)
            return got

        got = asyncio.run(asyncio.wait_for(go(), 30))
        assert server.token_requests == 2
        assert [name(e) for e in got] == [t["data"]["name"] for t in server.listed("t3", SUBS)]


def test_wrong_credentials_and_missing_user_agent_are_clear_errors(things: list[dict[str, Any]]) -> None:
    with RedditServer(things, require_user_agent="murmur-required") as server:
        with pytest.raises(SourceError, match="refused the credentials"):
            run(source(server, client_secret="wrong", max_polls=1, user_agent="murmur-required"))
        with pytest.raises(SourceError, match="refused the credentials") as info:
            run(source(server, max_polls=1))  # the server refuses this User-Agent
        assert "User-Agent" in str(info.value)


def test_falling_too_far_behind_counts_a_gap(things: list[dict[str, Any]]) -> None:
    with RedditServer(things) as server:
        listed = [t["data"]["name"] for t in server.listed("t3", SUBS)]
        src = source(server, max_pages=2, limit=5, max_polls=1)
        got = run(src, orjson.dumps({"new": listed[0]}).decode())
    assert [name(e) for e in got] == listed[-10:]
    assert src.stats.extra["gaps"] == 1


def test_bad_cursor_is_a_source_error(things: list[dict[str, Any]]) -> None:
    with RedditServer(things) as server, pytest.raises(SourceError, match="not a JSON object"):
        run(source(server, max_polls=1), "t3_abc")


def test_a_body_that_is_not_what_its_content_encoding_says_is_retried(things: list[dict[str, Any]]) -> None:
    with RedditServer(things) as server:
        # e.g. a proxy's error page labelled gzip: httpx.DecodingError, not a TransportError
        server.inject(200, body=b"<html>bad gateway</html>", headers={"Content-Encoding": "gzip"}, path="/r/")
        src = source(server, initial_pages=50, max_polls=1)
        got = run(src)
        expected = [t["data"]["name"] for t in server.listed("t3", SUBS)]
    assert [name(e) for e in got] == expected
    assert src.stats.errors == 1
    assert "DecodingError" in (src.stats.last_error or "")


@pytest.mark.parametrize("path", ["/api/v1/access_token", "/r/"])
def test_an_answer_that_trickles_times_out_and_is_retried(things: list[dict[str, Any]], path: str) -> None:
    with RedditServer(things) as server:
        # A byte every 0.1 s: no single read waits for the timeout, the whole answer never comes.
        server.inject(200, body=b"{" + b" " * 400 + b"}", path=path, trickle=0.1)
        src = source(server, initial_pages=50, max_polls=1, timeout=0.5)
        started = time.monotonic()
        got = run(src)
        expected = [t["data"]["name"] for t in server.listed("t3", SUBS)]
    assert time.monotonic() - started < 10
    assert [name(e) for e in got] == expected
    assert src.stats.errors == 1
    assert "no complete answer within 0.5 s" in (src.stats.last_error or "")


def test_an_answer_larger_than_the_limit_is_not_read_into_memory(things: list[dict[str, Any]]) -> None:
    from murmur.sources.fetch import MAX_ANSWER_BYTES

    with RedditServer(things) as server:
        server.inject(200, body=b"{" + b" " * MAX_ANSWER_BYTES + b"}", path="/r/")
        src = source(server, initial_pages=50, max_polls=1)
        got = run(src)
        expected = [t["data"]["name"] for t in server.listed("t3", SUBS)]
    assert [name(e) for e in got] == expected
    assert src.stats.errors == 1
    assert "larger than 16,777,216 bytes" in (src.stats.last_error or "")
