"""Mastodon source against the local server (real statuses): stream drops, REST backfill, rate limits,
deletes and edits, tokens, hashtag streams."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from murmur.config import SourceConfig
from murmur.errors import SourceError
from murmur.sources.mastodon import MastodonSource, mastodon_source
from murmur.sources.normalize import normalize
from murmur.testing import has_shared_data
from murmur.testing_servers import MastodonServer, mastodon_statuses_from_real_payloads
from murmur.types import Deletion, Draft, RawEvent
from tests.sources.conformance import collect

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real recorded payloads)")


def source(url: str, **options: Any) -> MastodonSource:
    opts = {
        "base_url": url,
        "initial_backfill": 500,
        "page_limit": 10,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
    }
    opts.update(options)
    return mastodon_source(SourceConfig(id="masto", type="mastodon", options=opts))


def status_id(event: RawEvent) -> str:
    return str(orjson.loads(event.payload).get("id", ""))


def run(
    src: MastodonSource, wanted: set[str] | None, cursor: str | None = None, quiet: float = 0.4
) -> list[RawEvent]:
    return asyncio.run(collect(src, cursor, wanted=wanted, identity=status_id, quiet=quiet, limit_s=30))


def test_stream_drops_are_backfilled_over_rest_without_gap_or_duplicate() -> None:
    statuses = mastodon_statuses_from_real_payloads()
    ids = [str(s["id"]) for s in statuses]
    # Every drop also publishes 4 statuses that only REST can return: the gap the backfill must close.
    with MastodonServer(statuses, published=10, drop_after=8, max_drops=3, publish_on_drop=4) as server:
        src = source(server.url)
        got = run(src, set(ids))
        assert server.drops == 3
        assert server.stream_connections == 4
        assert server.streamed < len(ids) - 10  # some statuses were never streamed at all
    assert [status_id(e) for e in got] == ids
    assert src.stats.reconnects == 3
    assert src.stats.errors == 3
    assert "incomplete chunked read" in (src.stats.last_error or "")
    assert got[-1].position == ids[-1]


def test_rest_rate_limit_headers_make_the_source_wait_instead_of_hitting_429() -> None:
    statuses = mastodon_statuses_from_real_payloads()
    with MastodonServer(statuses, rate_limit=3, rate_window=1.0) as server:
        src = source(server.url, streaming=False, max_polls=1, page_limit=20)
        started = time.perf_counter()
        got = run(src, None)
        elapsed = time.perf_counter() - started
        assert server.rest_requests == 4  # 68 statuses, 20 a page
        assert server.throttled == 0  # it waited when X-RateLimit-Remaining hit 0
    assert len(got) == len(statuses)
    assert elapsed >= 0.7, elapsed  # the window (1 s) had to reset once


def test_429_waits_until_the_announced_reset_then_retries() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.perf_counter())
        if len(calls) == 1:
            reset = (datetime.now(UTC) + timedelta(seconds=0.4)).isoformat().replace("+00:00", "Z")
            return httpx.Response(
                429, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, json={}
            )
        return httpx.Response(200, headers={"X-RateLimit-Remaining": "299"}, json=[])

    src = source("https://mastodon.example")

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await src._get_page(
                client, "https://mastodon.example/api/v1/timelines/public", {"limit": "1"}
            )

    response = asyncio.run(go())
    assert response.status_code == 200
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.35
    assert src.stats.extra["throttled"] == 1


@pytest.mark.parametrize("kind", ["retry-after", "naive-reset"])
def test_429_from_a_proxy_or_with_a_bare_reset_time_is_waited_out(kind: str) -> None:
    # A proxy's 429 says Retry-After, not X-RateLimit-Reset (the source retried after its short
    # backoff); a reset time without a zone raised TypeError and stopped the source.
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.perf_counter())
        if len(calls) == 1:
            if kind == "retry-after":
                return httpx.Response(429, headers={"Retry-After": "1"}, json={})
            reset = (datetime.now(UTC) + timedelta(seconds=0.4)).replace(tzinfo=None).isoformat()
            return httpx.Response(
                429, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, json={}
            )
        return httpx.Response(200, headers={"X-RateLimit-Remaining": "299"}, json=[])

    src = source("https://mastodon.example")

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await src._get_page(client, "https://mastodon.example/api/v1/timelines/public", {})

    assert asyncio.run(go()).status_code == 200
    assert len(calls) == 2
    assert calls[1] - calls[0] >= (0.95 if kind == "retry-after" else 0.35)


def test_deletes_carry_the_uri_and_edits_pass_through_to_the_normalizer() -> None:
    statuses = mastodon_statuses_from_real_payloads()
    by_id = {str(s["id"]): s for s in statuses}
    with MastodonServer(statuses, published=0, delete_every=5, edit_every=7) as server:
        src = source(server.url)
        got = run(src, {str(s["id"]) for s in statuses})
    deletes = [orjson.loads(e.payload) for e in got if orjson.loads(e.payload).get("event") == "delete"]
    assert len(deletes) == len(statuses) // 5
    for d in deletes:
        assert d["uri"] == by_id[d["payload"]]["uri"]
        assert normalize("mastodon", orjson.dumps(d)) == [Deletion(platform="mastodon", post_id=d["uri"])]
    edits = [e for e in got if status_id(e) and [status_id(x) for x in got].count(status_id(e)) > 1]
    assert len(edits) == 2 * (len(statuses) // 7)  # the update and its status.update, same status
    drafts = [x for e in got for x in normalize("mastodon", e.payload) if isinstance(x, Draft)]
    assert drafts, "public statuses become drafts"
    # A delete never moves the cursor.
    for before, event in itertools.pairwise(got):
        if orjson.loads(event.payload).get("event") == "delete":
            assert event.position == before.position


def test_access_token_is_sent_and_its_absence_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    statuses = mastodon_statuses_from_real_payloads()[:12]
    with MastodonServer(statuses, access_token="s3cret") as server:
        with pytest.raises(SourceError, match=r"answered 401; check access_token"):
            run(source(server.url, max_attempts=2), None)
        monkeypatch.setenv("MURMUR_TEST_MASTODON_TOKEN", "s3cret")
        src = source(server.url, access_token_env="MURMUR_TEST_MASTODON_TOKEN", streaming=False, max_polls=1)
        assert len(run(src, None)) == 12


def test_hashtag_stream_and_timeline() -> None:
    statuses = mastodon_statuses_from_real_payloads()
    tagged = [str(s["id"]) for s in statuses if any(t["name"] == "hungary" for t in s["tags"])]
    assert tagged
    with MastodonServer(statuses, published=0) as server:
        src = source(server.url, stream="hashtag", tag="#Hungary")
        got = run(src, set(tagged))
    assert [status_id(e) for e in got] == tagged
    with MastodonServer(statuses) as server:
        src = source(server.url, stream="hashtag", tag="hungary", streaming=False, max_polls=1)
        assert [status_id(e) for e in run(src, None)] == tagged


def test_cold_start_without_backfill_starts_from_now() -> None:
    statuses = mastodon_statuses_from_real_payloads()
    with MastodonServer(statuses, published=60) as server:
        src = source(server.url, initial_backfill=0)
        got = run(src, {str(s["id"]) for s in statuses[60:]})
    assert [status_id(e) for e in got] == [str(s["id"]) for s in statuses[60:]]


def test_polling_mode_picks_up_statuses_published_between_polls() -> None:
    statuses = mastodon_statuses_from_real_payloads()
    with MastodonServer(statuses, published=30) as server:
        src = source(server.url, streaming=False, poll_interval=0.05, max_polls=5)

        async def go() -> list[RawEvent]:
            got: list[RawEvent] = []
            async for event in src.events(None):
                got.append(event)
                if len(got) in (30, 40, 50):
                    server.publish(10)
            return got

        got = asyncio.run(asyncio.wait_for(go(), 30))
    assert [status_id(e) for e in got] == [str(s["id"]) for s in statuses[:60]]


@pytest.mark.parametrize("streaming", [True, False])
def test_a_body_that_is_not_what_its_content_encoding_says_is_retried(streaming: bool) -> None:
    statuses = mastodon_statuses_from_real_payloads()[:12]
    with MastodonServer(statuses) as server:
        # e.g. a proxy's error page labelled gzip: httpx.DecodingError, not a TransportError
        server.inject(200, body=b"<html>bad gateway</html>", headers={"Content-Encoding": "gzip"})
        src = source(server.url, streaming=streaming, max_polls=1)
        got = run(src, {str(s["id"]) for s in statuses})
    assert [status_id(e) for e in got] == [str(s["id"]) for s in statuses]
    assert src.stats.errors == 1
    assert "DecodingError" in (src.stats.last_error or "")


def test_quiet_streams_that_live_and_drop_are_no_failed_attempts() -> None:
    statuses = mastodon_statuses_from_real_payloads()[:12]
    with MastodonServer(statuses, published=6) as server:
        # Three streams in a row that greet, send a heartbeat and are closed (no status on them).
        server.inject(200, body=b":)\n:thump\n\n", path="/api/v1/streaming/", times=3)
        src = source(server.url, max_attempts=3)
        got = run(src, {str(s["id"]) for s in statuses})
        assert server.stream_connections == 1  # the fourth stream was the real one
    assert [status_id(e) for e in got] == [str(s["id"]) for s in statuses]
    assert src.stats.errors == 3


@pytest.mark.parametrize("streaming", [True, False])
def test_a_rest_answer_that_trickles_times_out_and_is_retried(streaming: bool) -> None:
    statuses = mastodon_statuses_from_real_payloads()[:12]
    with MastodonServer(statuses) as server:
        # A byte every 0.1 s: no single read waits for the timeout, the whole answer never comes.
        server.inject(200, body=b"[" + b" " * 400 + b"]", path="/api/v1/timelines/", trickle=0.1)
        src = source(server.url, streaming=streaming, max_polls=1, timeout=0.5)
        started = time.monotonic()
        got = run(src, {str(s["id"]) for s in statuses})
    assert time.monotonic() - started < 10
    assert [status_id(e) for e in got] == [str(s["id"]) for s in statuses]
    assert src.stats.errors == 1
    assert "no complete answer within 0.5 s" in (src.stats.last_error or "")


def test_a_rest_answer_larger_than_the_limit_is_not_read_into_memory() -> None:
    from murmur.sources.fetch import MAX_ANSWER_BYTES

    statuses = mastodon_statuses_from_real_payloads()[:12]
    with MastodonServer(statuses) as server:
        server.inject(200, body=b"[" + b" " * MAX_ANSWER_BYTES + b"]", path="/api/v1/timelines/")
        src = source(server.url, streaming=False, max_polls=1)
        got = run(src, {str(s["id"]) for s in statuses})
    assert [status_id(e) for e in got] == [str(s["id"]) for s in statuses]
    assert src.stats.errors == 1
    assert "larger than 16,777,216 bytes" in (src.stats.last_error or "")
