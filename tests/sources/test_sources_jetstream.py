"""Jetstream source against the local replay server: disconnects, backoff, cursors, lag."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import orjson
import pytest

from murmur.config import SourceConfig
from murmur.errors import SourceError
from murmur.sources.jetstream import JetstreamSource, jetstream_source
from murmur.testing import has_shared_data
from murmur.testing_servers import JetstreamReplayServer, jetstream_events_from_real_records
from murmur.types import RawEvent
from tests.sources.conformance import collect

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real recorded payloads)")

T0 = 1_767_225_600_000_000
STEP_US = 10_000


def time_us(event: RawEvent | bytes) -> int:
    raw = event.payload if isinstance(event, RawEvent) else event
    return int(orjson.loads(raw)["time_us"])


def source(url: str, **options: object) -> JetstreamSource:
    opts = {"url": url, "backoff_initial": 0.01, "backoff_max": 0.05, **options}
    return jetstream_source(SourceConfig(id="bsky", type="jetstream", options=opts))


def test_server_drops_mid_stream_source_reconnects_without_gap() -> None:
    events = jetstream_events_from_real_records(300, start_time_us=T0, step_us=STEP_US, identity_every=30)
    rewind_us = 50_000
    all_times = [time_us(e) for e in events]
    with JetstreamReplayServer(events, drop_after=40, max_drops=5) as server:
        src = source(server.url, rewind_seconds=rewind_us / 1e6)
        got = asyncio.run(
            collect(
                src,
                None,
                wanted={str(t) for t in all_times},
                identity=lambda e: str(time_us(e)),
                quiet=0.3,
                limit_s=30,
            )
        )
        cursors = list(server.cursors)
        drops = server.drops
    times = [time_us(e) for e in got]
    assert drops == 5
    assert src.stats.reconnects == 5
    assert src.stats.errors == 5
    assert "no close frame" in (src.stats.last_error or "")
    # The deduplicated union is exactly the full stream: no gap.
    assert sorted(set(times)) == all_times
    # Each reconnect asked for the last time_us seen minus the rewind window...
    assert cursors[0] is None
    assert len(cursors) == 6
    reconnects = [c for c in cursors[1:] if c is not None]
    assert reconnects == sorted(reconnects)
    assert len(set(reconnects)) == 5
    # ...so duplicates exist, but only inside a rewind window after a reconnect.
    duplicates = [t for t in set(times) if times.count(t) > 1]
    assert duplicates
    assert all(any(c <= t <= c + rewind_us for c in reconnects) for t in duplicates)
    # Positions never move backwards, even while replaying the window.
    positions = [int(e.position) for e in got]
    assert positions == sorted(positions)
    assert positions[-1] == all_times[-1]


def test_resume_from_cursor_asks_for_the_rewound_time() -> None:
    events = jetstream_events_from_real_records(50, start_time_us=T0, step_us=STEP_US)
    cursor = time_us(events[20])
    with JetstreamReplayServer(events) as server:
        src = source(server.url, rewind_seconds=0.03)
        want = {str(time_us(e)) for e in events[21:]}
        got = asyncio.run(
            collect(src, str(cursor), wanted=want, identity=lambda e: str(time_us(e)), quiet=0.3, limit_s=20)
        )
        assert server.cursors == [cursor - 30_000]
    times = [time_us(e) for e in got]
    assert times[0] == cursor - 30_000  # the rewind window is replayed (idempotent writes absorb it)
    assert set(times) == {time_us(e) for e in events[17:]}


def test_gives_up_after_max_attempts_with_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    src = source(f"ws://127.0.0.1:{port}/subscribe", max_attempts=3, open_timeout=2)

    async def go() -> None:
        async for _ in src.events(None):
            pass

    started = time.perf_counter()
    with pytest.raises(SourceError, match=r"gave up after 3 failed attempts in a row") as info:
        asyncio.run(go())
    assert f"127.0.0.1:{port}" in str(info.value)
    assert src.stats.errors == 3
    assert time.perf_counter() - started < 5


def test_wanted_collections_filter_and_lag() -> None:
    now_us = time.time_ns() // 1000
    events = jetstream_events_from_real_records(20, start_time_us=now_us - 20 * STEP_US, step_us=STEP_US)
    like = orjson.loads(events[5])
    like["commit"]["collection"] = "app.bsky.feed.like"
    events[5] = orjson.dumps(like)
    with JetstreamReplayServer(events) as server:
        src = source(server.url)
        want = {str(time_us(e)) for i, e in enumerate(events) if i != 5}
        got = asyncio.run(
            collect(src, None, wanted=want, identity=lambda e: str(time_us(e)), quiet=0.3, limit_s=20)
        )
    assert [time_us(e) for e in got] == [time_us(e) for i, e in enumerate(events) if i != 5]
    assert src.stats.lag_seconds is not None
    assert 0 <= src.stats.lag_seconds < 60
    assert src.stats.extra["kinds"] == {"commit": 19}


def test_replay_server_serves_another_process_and_rejects_other_paths() -> None:
    events = jetstream_events_from_real_records(5, start_time_us=T0, step_us=STEP_US)
    code = (
        "import sys\n"
        "from websockets.sync.client import connect\n"
        "with connect(sys.argv[1] + '?cursor=' + sys.argv[2]) as ws:\n"
        "    print(ws.recv(timeout=10)[:80])\n"
    )
    with JetstreamReplayServer(events) as server:
        result = subprocess.run(
            [sys.executable, "-c", code, server.url, str(time_us(events[3]))],
            capture_output=True,
            text=True,
            timeout=60,
        )
        bad = subprocess.run(
            [sys.executable, "-c", code, server.url.replace("/subscribe", "/firehose"), "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert f'"time_us":{time_us(events[3])}' in result.stdout
    assert bad.returncode != 0
    assert "404" in bad.stderr


def test_generated_events_are_distinct_and_use_real_records() -> None:
    events = jetstream_events_from_real_records(120, start_time_us=T0, delete_every=10, identity_every=25)
    decoded = [orjson.loads(e) for e in events]
    assert [d["time_us"] for d in decoded] == sorted({d["time_us"] for d in decoded})
    creates = [d for d in decoded if d["kind"] == "commit" and d["commit"]["operation"] == "create"]
    deletes = [d for d in decoded if d["kind"] == "commit" and d["commit"]["operation"] == "delete"]
    assert len(deletes) > 5
    assert sum(d["kind"] == "identity" for d in decoded) == 4
    rkeys = [(d["did"], d["commit"]["rkey"]) for d in creates]
    assert len(set(rkeys)) == len(rkeys)
    assert {(d["did"], d["commit"]["rkey"]) for d in deletes} <= set(rkeys)
    texts = {d["commit"]["record"]["text"] for d in creates}
    assert "new text114" in texts
    assert "regress test" in texts
    assert len(texts) > 50  # plus real Mastodon / Reddit texts for variety
    assert 40 < len({d["did"] for d in decoded}) <= 50  # a pool of `authors` synthetic dids
