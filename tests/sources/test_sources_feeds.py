"""Feed source against the local feed server (real RSS/Atom documents): conditional GETs, unchanged
documents, per-feed backoff."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from murmur.config import SourceConfig
from murmur.sources.backoff import retry_after
from murmur.sources.feeds import FeedSource, feed_source
from murmur.sources.normalize import normalize
from murmur.testing import has_shared_data
from murmur.testing_servers import FeedServer, real_feed_documents
from murmur.types import RawEvent
from tests.sources.conformance import collect

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real recorded payloads)")

NAMES = ["guardian.rss", "heise.atom", "rss-1.rss"]


@pytest.fixture(scope="module")
def docs() -> dict[str, bytes]:
    everything = real_feed_documents()
    return {n: everything[n] for n in NAMES}


def source(urls: list[str], **options: Any) -> FeedSource:
    opts: dict[str, Any] = {"urls": urls, "interval": 0, "max_polls": 1, **options}
    return feed_source(SourceConfig(id="feeds", type="feed", options=opts))


def run(src: FeedSource, cursor: str | None = None) -> list[RawEvent]:
    return asyncio.run(collect(src, cursor, wanted=None, identity=lambda e: e.position, quiet=1, limit_s=30))


@pytest.mark.parametrize(("etag", "last_modified"), [(True, True), (True, False), (False, True)])
def test_conditional_get_304_emits_nothing(docs: dict[str, bytes], etag: bool, last_modified: bool) -> None:
    with FeedServer(docs, etag=etag, last_modified=last_modified) as server:
        src = source(server.urls, max_polls=3)
        got = run(src)
        assert server.ok == dict.fromkeys(NAMES, 1)
        assert server.not_modified == dict.fromkeys(NAMES, 2)
    assert [e.payload for e in got] == [docs[n] for n in sorted(NAMES)]
    assert src.stats.extra["not_modified"] == 6
    # Each document becomes one post per item.
    assert sum(len(normalize("feed", e.payload)) for e in got) == 55 + 15 + 69


def test_without_validators_an_identical_body_is_not_emitted_again(docs: dict[str, bytes]) -> None:
    with FeedServer(docs, etag=False, last_modified=False) as server:
        src = source(server.urls, max_polls=2)
        got = run(src)
        assert server.ok == dict.fromkeys(NAMES, 2)
    assert len(got) == 3
    assert src.stats.extra["unchanged"] == 3


def test_metadata_only_change_is_skipped_and_a_new_item_is_emitted(docs: dict[str, bytes]) -> None:
    guardian = docs["guardian.rss"]
    stamp = b"<pubDate>Wed, 31 Jan 2018 20:15:15 GMT</pubDate>"
    assert stamp in guardian
    with FeedServer({"guardian.rss": guardian}) as server:
        url = server.urls[0]
        first = run(source([url]))
        assert len(first) == 1
        cursor = first[-1].position
        # Only the channel's date changes: new ETag, same items.
        bumped = guardian.replace(stamp, b"<pubDate>Thu, 01 Feb 2018 08:00:00 GMT</pubDate>", 1)
        server.set_feed("guardian.rss", bumped)
        src = source([url])
        assert run(src, cursor) == []
        assert src.stats.extra["unchanged"] == 1
        # A new item appears.
        item = b"<item><title>A new story</title><link>https://example.org/new-story</link><guid>new-1</guid></item>"
        server.set_feed("guardian.rss", bumped.replace(b"<item>", item + b"<item>", 1))
        got = run(source([url]), cursor)
    assert len(got) == 1
    assert b"A new story" in got[0].payload
    assert orjson.loads(got[0].position)["seq"] == 2


def test_a_new_item_past_max_seen_items_is_emitted(docs: dict[str, bytes]) -> None:
    # A feed that lists more items than the cursor keeps digests of, oldest first: the new item comes
    # last, after every remembered one; it is not "all seen already".
    guardian = docs["guardian.rss"]
    end = guardian.rindex(b"</item>") + len(b"</item>")
    with FeedServer({"guardian.rss": guardian}) as server:
        url = server.urls[0]
        first = run(source([url], max_seen_items=10))
        assert len(first) == 1
        item = b"<item><title>A new story</title><link>https://example.org/new-story</link><guid>new-1</guid></item>"
        server.set_feed("guardian.rss", guardian[:end] + item + guardian[end:])
        src = source([url], max_seen_items=10)
        got = run(src, first[-1].position)
    assert len(got) == 1
    assert b"A new story" in got[0].payload
    assert src.stats.extra["unchanged"] == 0


def test_a_failing_feed_backs_off_alone(docs: dict[str, bytes]) -> None:
    # One failure and a very long backoff: the feed is not retried in later polls, the others are.
    with FeedServer(docs, failures={"heise.atom": 1}) as server:
        src = source(server.urls, max_polls=3, backoff_initial=1000, backoff_max=1000)
        got = run(src)
        assert server.failed == {"heise.atom": 1}
        assert "heise.atom" not in server.ok
        assert server.not_modified == {"guardian.rss": 2, "rss-1.rss": 2}
    assert len(got) == 2
    assert src.stats.errors == 1
    assert src.stats.extra["failing"] == 1
    assert "503" in (src.stats.last_error or "")


def test_a_failing_feed_is_retried_after_its_backoff(docs: dict[str, bytes]) -> None:
    with FeedServer(docs, failures={"heise.atom": 3}) as server:
        src = source(server.urls, max_polls=40, interval=0.01, backoff_initial=0.001, backoff_max=0.02)
        got = run(src)
        assert server.failed == {"heise.atom": 3}
        assert server.ok == dict.fromkeys(NAMES, 1)
    assert sorted(e.payload for e in got) == sorted(docs.values())
    assert src.stats.extra["failing"] == 0


def test_a_malformed_feed_is_still_passed_on(docs: dict[str, bytes]) -> None:
    broken = real_feed_documents()["uolNoticias.rss"]  # not well-formed XML, as in the wild
    with FeedServer({"uol.rss": broken}) as server:
        got = run(source(server.urls))
    assert [e.payload for e in got] == [broken]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_waited_out_before_the_feed_is_asked_again(
    docs: dict[str, bytes], status: int
) -> None:
    with FeedServer(docs) as server:
        server.inject(status, body=b"slow down", headers={"Retry-After": "30"}, path="/feeds/heise.atom")
        # The backoff alone would ask again at the next poll, 0.05 s later.
        src = source(server.urls, max_polls=12, interval=0.05, backoff_initial=0.01, backoff_max=60)
        assert len(run(src)) == 2
        assert "heise.atom" not in server.ok
        assert src.stats.extra["failing"] == 1
        assert f"HTTP {status}" in (src.stats.last_error or "")
        server.inject(status, body=b"slow down", headers={"Retry-After": "1"}, path="/feeds/heise.atom")
        src = source(server.urls, max_polls=40, interval=0.05, backoff_initial=0.01, backoff_max=60)
        assert len(run(src)) == 3
        assert server.ok["heise.atom"] == 1  # asked again once the second had passed


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert retry_after("120", now=now) == 120
    assert retry_after("Wed, 01 May 2024 12:01:30 GMT", now=now) == 90
    assert retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0
    assert retry_after("soon", now=now) == retry_after(None) == 0


def test_a_feed_that_trickles_its_body_times_out_and_the_others_go_on(docs: dict[str, bytes]) -> None:
    with FeedServer(docs) as server:
        # A byte every 0.1 s: no single read waits for the timeout, the whole answer never comes.
        server.inject(200, body=b"<rss>" + b" " * 400 + b"</rss>", path="/feeds/heise.atom", trickle=0.1)
        src = source(server.urls, timeout=0.5)
        got = asyncio.run(collect(src, None, wanted=None, identity=lambda e: e.position, quiet=1, limit_s=10))
    assert len(got) == 2
    assert src.stats.errors == 1
    assert "0.5 s" in (src.stats.last_error or "")


def test_a_feed_larger_than_the_limit_is_not_read_into_memory(docs: dict[str, bytes]) -> None:
    from murmur.sources.normalize._common import MAX_FEED_BYTES

    with FeedServer(docs) as server:
        # a URL serving a huge file: the read stops past the limit, the other feeds go on
        server.inject(200, body=b"<rss>" + b" " * MAX_FEED_BYTES + b"</rss>", path="/feeds/heise.atom")
        src = source(server.urls)
        got = run(src)
    assert len(got) == 2
    assert src.stats.errors == 1
    assert "larger than 8,388,608 bytes" in (src.stats.last_error or "")


def test_a_token_in_a_feed_url_stays_out_of_the_logs_and_the_status(
    docs: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    with FeedServer(docs) as server:
        server.inject(404, path="/feeds/heise.atom")
        urls = [u + "?token=s3cret-value" if u.endswith("heise.atom") else u for u in server.urls]
        src = source(urls)
        with caplog.at_level("WARNING"):
            run(src)
    assert src.stats.errors == 1
    assert "token=***" in (src.stats.last_error or "")
    assert "s3cret" not in (src.stats.last_error or "")
    assert "s3cret" not in caplog.text
    assert "token=***" in caplog.text
