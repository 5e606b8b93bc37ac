"""Overload: input at 10x the neural tier's capacity loses nothing, labels every post within the
latency budget, and the backfill later upgrades every firehose-labelled post."""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from murmur.batch import posts_from_table
from murmur.enrich.base import Component
from murmur.enrich.lexical import LexicalSentiment
from murmur.enrich.neural.components import EMBED_NAME, SENTIMENT_NAME, E5Embed, E5Sentiment
from murmur.enrich.neural.embedder import E5Embedder
from murmur.enrich.neural.samples import mixed_posts
from murmur.enrich.neural.tiered import FixedCapacity, MeasuredCapacity, TieredEnricher
from murmur.runtime import backfill
from murmur.store import Store
from murmur.types import Post

pytestmark = pytest.mark.usefixtures("need_shared")

BUDGET = 5.0


def measured_speed(embedder: E5Embedder) -> float:
    """Posts/s of the warm neural tier here (this CPU, this load): the test sizes itself by it."""
    neural: list[Component] = [E5Embed(embedder), E5Sentiment()]
    posts = make_posts(mixed_posts(96, 1), datetime.now(UTC), rate=1.0)
    for comp in neural:
        comp.process(posts[:32])
    t0 = time.monotonic()
    for comp in neural:
        comp.process(posts[32:])
    return 64 / (time.monotonic() - t0)


def make_posts(texts: list[str], start: datetime, rate: float) -> list[Post]:
    return [
        Post(
            platform="file",
            post_id=f"p{i:05d}",
            created_at=start,
            ingested_at=start + timedelta(seconds=i / rate),  # arrival time at ``rate`` posts/s
            author_key=f"a{i % 97}",
            text=text,
        )
        for i, text in enumerate(texts)
    ]


def test_overload_loses_nothing_meets_latency_and_backfills(embedder: E5Embedder) -> None:
    # The planner is told a capacity (injected, so the plan is deterministic) of half what the tier
    # really manages here, at most 40 posts/s; input comes at 10x that for 5 s.
    capacity = min(40.0, measured_speed(embedder) / 2)
    rate = 10 * capacity
    n = int(rate * 5)
    texts = (mixed_posts(2592, 0) * 2)[:n]
    neural: list[Component] = [E5Embed(embedder), E5Sentiment()]
    firehose = LexicalSentiment()
    tiered = TieredEnricher(neural, firehose, budget_s=BUDGET, capacity=FixedCapacity(capacity))
    warm = make_posts(["warm up", "the models"], datetime.now(UTC), rate)  # a service loads its models first
    for comp in [*neural, firehose]:
        comp.process(warm)
    start = datetime.now(UTC) + timedelta(seconds=0.2)
    posts = make_posts(texts, start, rate)
    latency: dict[str, float] = {}
    store = Store.open(":memory:")
    i = 0
    deadline = time.monotonic() + 60
    while i < n and time.monotonic() < deadline:
        now = datetime.now(UTC)
        arrived = [p for p in posts[i : i + 1000] if p.ingested_at <= now]
        if not arrived:
            time.sleep(max(0.0, (posts[i].ingested_at - now).total_seconds()))
            continue
        tiered.enrich(arrived)
        done = datetime.now(UTC)
        for p in arrived:
            latency[p.post_id] = (done - p.ingested_at).total_seconds()
        # as the runtime stores a batch: posts and the embeddings the neural tier gave some of them
        store.write(
            posts=arrived, embeddings=[(p.platform, p.post_id, p.embedding) for p in arrived if p.embedding]
        )
        i += len(arrived)
    assert i == n, "the stream did not finish"
    assert len(latency) == n
    assert max(latency.values()) <= BUDGET, f"a post waited {max(latency.values()):.2f} s"
    models = {p.sentiment_model for p in posts}
    assert models <= {SENTIMENT_NAME, LexicalSentiment.name}
    assert all(p.sentiment in ("negative", "neutral", "positive") for p in posts)
    n_neural = sum(p.sentiment_model == SENTIMENT_NAME for p in posts)
    stream_s = n / rate
    # the planner gave the neural tier what its capacity allows, no more: most posts were firehose
    assert 0 < n_neural <= capacity * (stream_s + BUDGET)
    assert all(p.embedding is not None for p in posts if p.sentiment_model == SENTIMENT_NAME)
    assert store.conn.execute("SELECT count(*) FROM posts").fetchall() == [(n,)]

    upgraded = 0
    for _ in range(n):
        chunk = backfill(store, tiered, 700)
        if chunk == 0:
            break
        upgraded += chunk
    assert upgraded == n - n_neural
    counts = dict(store.conn.execute("SELECT sentiment_model, count(*) FROM posts GROUP BY 1").fetchall())
    assert counts == {SENTIMENT_NAME: n}
    assert store.conn.execute("SELECT count(*) FROM embeddings").fetchall() == [(n,)]
    assert backfill(store, tiered, 700) == 0
    table = store.conn.sql("SELECT * FROM posts ORDER BY post_id LIMIT 3").to_arrow_table()
    stored = posts_from_table(table)
    assert stored[0].text == texts[0]
    assert stored[0].ingested_at == posts[0].ingested_at
    assert stored[0].embedding_model == EMBED_NAME


def test_deadline_hands_unfinished_work_to_the_firehose(embedder: E5Embedder) -> None:
    """Capacity wildly overestimated: the clock check between chunks still keeps the budget."""
    texts = mixed_posts(300, 0)
    start = datetime.now(UTC)
    chunk_s = 16 / measured_speed(embedder)  # a chunk cannot be cut short: the most it may overrun
    posts = make_posts(texts, start - timedelta(seconds=1), rate=1000.0)
    tiered = TieredEnricher(
        [E5Embed(embedder), E5Sentiment()],
        LexicalSentiment(),
        budget_s=1.5,
        capacity=FixedCapacity(1e6),
        chunk=16,
    )
    t0 = time.monotonic()
    report = tiered.enrich(posts)
    assert time.monotonic() - t0 <= 1.5 + 2 * chunk_s
    assert report.neural + report.firehose == len(posts)
    assert all(p.sentiment_model is not None for p in posts)


def test_posts_past_their_deadline_go_straight_to_the_firehose() -> None:
    posts = make_posts(["good", "bad"], datetime.now(UTC) - timedelta(seconds=10), rate=1.0)
    calls: list[int] = []

    class Boom:
        name = "boom"
        requires: frozenset[str] = frozenset()
        assigns: frozenset[str] = frozenset({"embedding"})

        def process(self, batch: object) -> None:
            calls.append(1)

    tiered = TieredEnricher([Boom()], LexicalSentiment(), capacity=MeasuredCapacity(initial=100.0))
    report = tiered.enrich(posts)
    assert (report.neural, report.firehose) == (0, 2)
    assert not calls
    assert {p.sentiment_model for p in posts} == {LexicalSentiment.name}
    assert tiered.requires == frozenset({"lang"})
    assert "sentiment" in tiered.assigns


def test_measured_capacity_learns() -> None:
    cap = MeasuredCapacity(initial=10.0, alpha=0.5)
    assert cap.rate() == 10.0
    cap.observe(1, 5.0)  # the first call loads the models: not a speed
    assert cap.rate() == 10.0
    cap.observe(100, 1.0)
    assert cap.rate() == 100.0
    cap.observe(300, 1.0)
    assert cap.rate() == 200.0


def test_tiered_enricher_pickles_for_worker_processes() -> None:
    tiered = TieredEnricher([E5Embed(), E5Sentiment()], LexicalSentiment(), capacity=FixedCapacity(10.0))
    clone = pickle.loads(pickle.dumps(tiered))
    assert (clone.name, clone.requires, clone.assigns) == (tiered.name, tiered.requires, tiered.assigns)
    assert clone.firehose_models == (LexicalSentiment.name,)
    assert clone.now().tzinfo is not None
    posts = make_posts(["good", "bad"], datetime.now(UTC) - timedelta(seconds=10), rate=1.0)
    report = clone.enrich(posts)  # past their deadline: the firehose tier, no model loaded
    assert (report.neural, report.firehose) == (0, 2)


class ChunkCounter:
    """A neural component stand-in that records the size of each chunk it is given."""

    name = "count"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"embedding"})

    def __init__(self) -> None:
        self.seen: list[int] = []

    def process(self, batch: Sequence[Post]) -> None:
        self.seen.append(len(batch))


def test_the_plan_keeps_a_reserve_for_what_follows_the_neural_tier() -> None:
    # Planned up to the oldest post's deadline, the neural tier left no time for the write, the
    # rest of the pipeline and the posts arriving meanwhile: p99 5.8 s end to end at 10x capacity.
    now = datetime.now(UTC)
    counter = ChunkCounter()
    seen = counter.seen
    posts = make_posts(["good"] * 1000, now, rate=1e9)  # all arrived now
    tiered = TieredEnricher(
        [counter],
        LexicalSentiment(),
        capacity=FixedCapacity(100.0),
        clock=lambda: 0.0,
        now=lambda: now,
    )
    report = tiered.enrich(posts)
    assert report.neural == sum(seen) == int(100 * 0.8 * (5.0 - 1.5))  # 280, not 400
    old = TieredEnricher([counter], LexicalSentiment(), capacity=FixedCapacity(100.0), reserve_s=0.0)
    old.now = lambda: now
    old.clock = lambda: 0.0
    assert old.enrich(make_posts(["good"] * 1000, now, rate=1e9)).neural == 400


def test_the_hand_off_says_when_a_taken_batch_arrived() -> None:
    # A post's age counts from its arrival: it may wait in the hand-off while the batch before it is
    # enriched, and the tiered enricher's budget did not see that wait.
    import asyncio

    from murmur.runtime import QueueHandoff
    from murmur.types import RawEvent

    async def scenario() -> tuple[float, float, float, object]:
        handoff = QueueHandoff(maxsize=10)
        before = time.time()
        await handoff.put(RawEvent("s", "jetstream", b"{}", "1"))
        await asyncio.sleep(0.3)
        await handoff.put(RawEvent("s", "jetstream", b"{}", "2"))
        taken_at = time.time()
        await handoff.take(10, 0)
        arrived = handoff.arrived()
        assert arrived is not None
        await handoff.take(10, 0)
        return before, arrived.timestamp(), taken_at, handoff.arrived()

    before, arrived, taken_at, nothing = asyncio.run(scenario())
    assert before <= arrived <= before + 0.1
    assert taken_at - arrived >= 0.25
    assert nothing is None


def test_chunks_are_sized_by_the_measured_rate() -> None:
    # The clock is read between chunks: at 20 posts/s a chunk of 64 ran 3.2 s past the check.
    now = datetime.now(UTC)
    counter = ChunkCounter()
    seen = counter.seen
    tiered = TieredEnricher([counter], LexicalSentiment(), capacity=FixedCapacity(20.0), clock=lambda: 0.0)
    tiered.now = lambda: now
    tiered.enrich(make_posts(["good"] * 200, now, rate=1e9))
    assert seen
    assert max(seen) == 5  # 0.25 s at 20 posts/s
    assert sum(seen) == int(20 * 0.8 * 3.5)
