from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pytest

from murmur.enrich.base import Pipeline
from murmur.privacy import PrivacyGate
from murmur.runtime import Processor, Runtime
from murmur.store import Store
from murmur.testing import ListSource, jetstream_commit
from murmur.types import Post


def jetstream(i: int, *, op: str = "create", text: str | None = None, did: str = "did:plc:alice") -> bytes:
    text = text if text is not None else f"post number {i} #murmur mail x{i}@example.org"
    return jetstream_commit(i, text=text, op=op, did=did, langs=["en"])


def run_once(store: Store, payloads: list[bytes], tmp: Path, *, batch: int = 7) -> Runtime:
    runtime = Runtime(
        store,
        [ListSource("bsky", "jetstream", payloads)],
        Processor(PrivacyGate(key_file=tmp / "keys")),
        batch_size=batch,
        flush_seconds=0.01,
    )
    asyncio.run(runtime.run())
    return runtime


def test_stream_with_bad_payloads_and_deletions(tmp_path: Path) -> None:
    payloads = [jetstream(i) for i in range(20)]
    payloads.insert(5, b'{"did": "did:plc:x", "time_us": 1, "kind": "commit", "commit": {')  # truncated
    payloads.insert(9, b"\xff\xfe not utf-8 at all")
    payloads.append(jetstream(3, op="delete"))
    with Store.open(tmp_path / "m.duckdb") as store:
        runtime = run_once(store, payloads, tmp_path)
        assert runtime.stats.quarantined == 2
        assert runtime.stats.deletions == 1
        texts = [r[0] for r in store.conn.execute("SELECT text FROM posts").fetchall()]
        assert len(texts) == 19
        assert all("@example.org" not in t and "<EMAIL>" in t for t in texts)
        reasons = store.conn.execute("SELECT position, reason FROM quarantine ORDER BY position").fetchall()
        assert [p for p, _ in reasons] == ["10", "6"]
        assert all(r for _, r in reasons)
        assert store.cursor("bsky") == str(len(payloads))


def test_restart_resumes_from_cursor_without_duplicates(tmp_path: Path) -> None:
    payloads = [jetstream(i) for i in range(50)]
    with Store.open(tmp_path / "m.duckdb") as store:
        first = run_once(store, payloads[:30], tmp_path)
        assert first.stats.posts == 30
        second = run_once(store, payloads, tmp_path)
        assert second.stats.posts == 20
        count = store.conn.execute("SELECT count(*), count(DISTINCT post_id) FROM posts").fetchone()
        assert count == (50, 50)


def test_raw_author_ids_never_reach_the_store(tmp_path: Path) -> None:
    payloads = [jetstream(i, did=f"did:plc:person{i % 3}") for i in range(12)]
    with Store.open(tmp_path / "m.duckdb") as store:
        run_once(store, payloads, tmp_path)
        dump = str(store.conn.execute("SELECT * FROM posts").fetchall())
        assert "did:plc" not in dump
        assert "person" not in dump
        keys = store.conn.execute("SELECT count(DISTINCT author_key) FROM posts").fetchone()
        assert keys == (3,)


@pytest.mark.parametrize("batch", [1, 1000])
def test_batch_size_does_not_change_the_result(tmp_path: Path, batch: int) -> None:
    payloads = [jetstream(i) for i in range(25)] + [jetstream(4, op="delete")]
    with Store.open(tmp_path / f"m{batch}.duckdb") as store:
        run_once(store, payloads, tmp_path, batch=batch)
        rows = store.conn.execute("SELECT count(*) FROM posts").fetchone()
        assert rows == (24,)


def test_handoff_take_without_waiting_returns_what_is_queued() -> None:
    from murmur.runtime import QueueHandoff
    from murmur.types import RawEvent

    async def scenario() -> tuple[int, int, int]:
        handoff = QueueHandoff(maxsize=10)
        for i in range(3):
            await handoff.put(RawEvent("s", "jetstream", b"{}", str(i)))
        now = await handoff.take(2, 0)  # a stopping runtime drains with no wait: must not spin
        rest = await handoff.take(10, 0)
        empty = await handoff.take(10, 0.01)
        return len(now), len(rest), len(empty)

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == (2, 1, 0)


def test_firehose_tier_has_nothing_to_backfill_and_stats_show_the_backfill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from murmur.cli.ingest import print_stats
    from murmur.enrich import firehose_pipeline

    with Store.open(tmp_path / "m.duckdb") as store:
        runtime = Runtime(
            store,
            [ListSource("bsky", "jetstream", [jetstream(i) for i in range(5)])],
            Processor(PrivacyGate(key_file=tmp_path / "keys"), firehose_pipeline()),
            status_file=tmp_path / "status.json",
            backfill_idle_seconds=0.0,
        )
        assert runtime.upgrader is None
        stats = asyncio.run(runtime.run())
    status = orjson.loads((tmp_path / "status.json").read_bytes())
    assert (stats.backfilled, status["backfilled"], status["awaiting_backfill"]) == (0, 0, None)
    result: dict[str, object] = {"posts": 5, "k": 5, "quarantined": 0, "by_platform": [], "by_language": []}
    print_stats({**result, "service": status})
    assert "backfill" not in capsys.readouterr().out
    print_stats({**result, "service": {**status, "backfilled": 7, "awaiting_backfill": 3}})
    assert "7 posts backfilled, 3 awaiting backfill" in capsys.readouterr().out


def test_a_failing_write_stops_the_runtime_with_its_error_instead_of_hanging(tmp_path: Path) -> None:
    import time

    def failing_write(posts: object) -> None:
        time.sleep(0.2)  # the main loop meanwhile fills the writer's queue and waits for room
        msg = "disk full"
        raise RuntimeError(msg)

    hooks: list[Callable[[Sequence[Post]], None]] = [failing_write]

    async def scenario(store: Store) -> str:
        runtime = Runtime(
            store,
            [ListSource("bsky", "jetstream", [jetstream(i) for i in range(200)])],
            Processor(PrivacyGate(key_file=tmp_path / "keys")),
            batch_size=5,
            flush_seconds=0.01,
            hooks=hooks,
            backfill_idle_seconds=None,
        )
        task = asyncio.ensure_future(runtime.run())
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            return "hung"
        with pytest.raises(RuntimeError, match="disk full"):
            task.result()
        return "stopped"

    with Store.open(tmp_path / "m.duckdb") as store:
        assert asyncio.run(scenario(store)) == "stopped"
        assert store.cursor("bsky") is None  # nothing was committed


class Fragile:
    """A component that fails on posts saying "boom" (or on every post, when ``always``)."""

    name = "test.fragile@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"sentiment_model"})

    def __init__(self, *, always: bool = False) -> None:
        self.always = always

    def process(self, posts: Sequence[Post]) -> None:
        for post in posts:
            if self.always or "boom" in post.text:
                msg = f"cannot read {post.text[:12]!r}"
                raise ValueError(msg)
            post.sentiment_model = "fragile"


def run_fragile(store: Store, payloads: list[bytes], tmp: Path, fragile: Fragile) -> Runtime:
    runtime = Runtime(
        store,
        [ListSource("bsky", "jetstream", payloads)],
        Processor(PrivacyGate(key_file=tmp / "keys"), Pipeline([fragile])),
        batch_size=50,
        flush_seconds=0.01,
        backfill_idle_seconds=None,
    )
    asyncio.run(runtime.run())
    return runtime


def test_a_post_that_breaks_enrichment_is_quarantined_and_the_stream_goes_on(tmp_path: Path) -> None:
    # A restart would replay such a post and fail on it again: stopping would stop the service for good.
    payloads = [jetstream(i) for i in range(20)]
    payloads[7] = jetstream(7, text="boom goes the parser")
    with Store.open(tmp_path / "m.duckdb") as store:
        runtime = run_fragile(store, payloads, tmp_path, Fragile())
        assert runtime.stats.posts == 19
        assert runtime.stats.sources["bsky"].posts == 19
        stored = store.conn.execute("SELECT DISTINCT sentiment_model FROM posts").fetchall()
        assert stored == [("fragile",)]
        rows = store.conn.execute("SELECT source_id, position, reason FROM quarantine").fetchall()
        assert rows == [("bsky", "8", "enrichment error: ValueError: cannot read 'boom goes th'")]
        assert store.cursor("bsky") == "20"


def test_an_enrichment_failure_of_every_post_stops_the_runtime(tmp_path: Path) -> None:
    # a model that cannot run is no post's fault: quarantining the whole stream would lose it
    with Store.open(tmp_path / "m.duckdb") as store:
        with pytest.raises(ValueError, match="cannot read"):
            run_fragile(store, [jetstream(i) for i in range(5)], tmp_path, Fragile(always=True))
        assert store.cursor("bsky") is None
        assert store.conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_status_counts_posts_and_deletions_per_source(tmp_path: Path) -> None:
    # status.json ("counters per source", shown by `murmur stats --json`) said posts 0 and deletions
    # 0 for every source, whatever they had stored.
    payloads = [jetstream(i) for i in range(6)] + [jetstream(2, op="delete")]
    with Store.open(tmp_path / "m.duckdb") as store:
        runtime = Runtime(
            store,
            [ListSource("bsky", "jetstream", payloads), ListSource("more", "jetstream", payloads[:3])],
            Processor(PrivacyGate(key_file=tmp_path / "keys")),
            status_file=tmp_path / "status.json",
            flush_seconds=0.01,
        )
        stats = asyncio.run(runtime.run())
    sources = orjson.loads((tmp_path / "status.json").read_bytes())["sources"]
    counts = {sid: (c["posts"], c["deletions"]) for sid, c in sources.items()}
    assert counts == {"bsky": (6, 1), "more": (3, 0)}
    assert sum(c.posts for c in stats.sources.values()) == stats.posts
