"""The shared reconnect helper, option parsing and the SSE parser (no network, no shared data)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import msgspec
import pytest

from murmur.config import SourceConfig, parse_config
from murmur.errors import ConfigError, SourceError
from murmur.sources import SOURCES, register_builtins
from murmur.sources.backoff import Backoff, RetryOptions, parse_options, sleep_for_rate_limit
from murmur.sources.jetstream import JetstreamOptions, parse_cursor, subscribe_url
from murmur.sources.mastodon import parse_sse


def test_full_jitter_delays_stay_under_a_doubling_cap() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0, rng=random.Random(7))
    caps, delays = [], []
    for _ in range(8):
        caps.append(backoff.cap())
        delays.append(backoff.next_delay())
    assert caps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert all(0.0 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len(set(delays)) == len(delays), "jittered delays should differ"
    # Full jitter spreads over the whole interval: over many draws the mean is about cap / 2.
    wide = Backoff(initial=8.0, maximum=8.0, rng=random.Random(1))
    mean = sum(wide.next_delay() for _ in range(2000)) / 2000
    assert 3.5 < mean < 4.5
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.cap() == 0.5


def test_huge_failure_counts_do_not_overflow() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, failures=10_000)
    assert backoff.cap() == 60.0


def test_wait_sleeps_then_gives_up_after_max_attempts() -> None:
    backoff = Backoff(initial=0.02, maximum=0.02, max_attempts=3, rng=random.Random(3))

    async def go() -> float:
        started = time.perf_counter()
        await backoff.wait("test", "boom 1")
        await backoff.wait("test", "boom 2")
        with pytest.raises(
            SourceError, match=r"gave up after 3 failed attempts in a row; last error: boom 3"
        ):
            await backoff.wait("test", OSError("boom 3"))
        return time.perf_counter() - started

    elapsed = asyncio.run(go())
    assert elapsed < 1.0
    assert backoff.failures == 3


def test_rate_limit_sleep_is_capped() -> None:
    started = time.perf_counter()
    waited = asyncio.run(sleep_for_rate_limit("test", 30.0, max_wait=0.05))
    assert waited == 0.05
    assert 0.04 <= time.perf_counter() - started < 1.0
    assert asyncio.run(sleep_for_rate_limit("test", -3.0, max_wait=5.0)) == 0.0


class _Opts(RetryOptions, forbid_unknown_fields=True, kw_only=True):
    url: str
    names: list[str] = msgspec.field(default_factory=list)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({}, "sources.s1.url (type 'demo'): is required but missing"),
        (
            {"url": "x", "urll": 1},
            "sources.s1.urll (type 'demo'): is not an option of this source type; known",
        ),
        ({"url": 3}, "sources.s1.url (type 'demo'): Expected `str`, got `int`"),
        ({"url": "x", "names": ["a", 2]}, "sources.s1.names[1]"),
        ({"url": "x", "max_attempts": "many"}, "sources.s1.max_attempts"),
    ],
)
def test_option_errors_name_the_key(options: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_options(SourceConfig(id="s1", type="demo", options=options), _Opts)
    assert needle in str(info.value)


def test_options_come_from_a_toml_sources_table() -> None:
    config = parse_config(
        {
            "sources": [
                {"id": "bsky", "type": "jetstream", "url": "ws://127.0.0.1:9/subscribe", "rewind_seconds": 2}
            ]
        },
        env={},
    )
    register_builtins()
    source = SOURCES.get("jetstream")(config.sources[0])
    assert source.id == "bsky"
    opts = parse_options(config.sources[0], JetstreamOptions)
    assert opts.rewind_seconds == 2.0
    assert opts.collections == ["app.bsky.feed.post"]


def test_register_builtins_is_idempotent_and_lists_every_type() -> None:
    register_builtins()
    register_builtins()
    assert {"jetstream", "mastodon", "reddit", "feed", "file"} <= set(SOURCES.names())


def test_subscribe_url_and_cursor() -> None:
    url = subscribe_url("wss://js.example/subscribe?compress=false", ["app.bsky.feed.post"], 1700)
    assert url == "wss://js.example/subscribe?compress=false&wantedCollections=app.bsky.feed.post&cursor=1700"
    assert (
        subscribe_url("ws://h:1", ["a", "b"], None)
        == "ws://h:1/subscribe?wantedCollections=a&wantedCollections=b"
    )
    assert subscribe_url("ws://h:1/subscribe", [], -5).endswith("cursor=0")
    assert parse_cursor("s", None) is None
    assert parse_cursor("s", "") is None
    assert parse_cursor("s", "1700000000000000") == 1_700_000_000_000_000
    with pytest.raises(SourceError, match="not a Jetstream time_us"):
        parse_cursor("s", "yesterday")


async def _lines(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item


def test_sse_parser_handles_heartbeats_multiline_data_and_event_names() -> None:
    lines = [
        ":)",
        ":thump",
        "event: update",
        'data: {"id": "1",',
        'data: "uri": "u"}',
        "",
        "",
        ":thump",
        "event: delete",
        "data: 42",
        "",
        "data:no-space",
        "id: 7",
        "",
        "event: status.update",
        "data: {}",
    ]

    async def go() -> list[tuple[str, str]]:
        return [item async for item in parse_sse(_lines(lines))]

    assert asyncio.run(go()) == [
        ("update", '{"id": "1",\n"uri": "u"}'),
        ("delete", "42"),
        ("message", "no-space"),
        ("status.update", "{}"),
    ]
