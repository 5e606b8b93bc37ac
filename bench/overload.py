"""Overload: input at 10x the neural tier's capacity, through the runtime ``murmur run`` builds.

Measures the promise of ``docs/enrichment.md`` (Overload and backfill) where a user meets it: no post
is lost, every post is stored with a sentiment label within the alert latency (5 s), and once the
input stops the backfill upgrades every post the firehose tier labelled.

The runtime is ``service.build_runtime``'s for the default config of the neural tier (the privacy
gate, e5 int8 on the CPU inside ``murmur.tiered.e5@1``, the firehose pipeline's other components,
the query layer's hooks, the one DuckDB writer, the backfill), reading the Jetstream source over
loopback from a server in a process of its own. Steps, in one run:

1. capacity: the very e5 components the runtime's tiered enricher holds embed and label real texts
   (other ones than the stream's, cut to the same 300 characters) in the enricher's chunks (64
   posts) for ``--calibrate`` seconds, after one untimed chunk: the neural tier's posts/s on this
   machine, now. (Called directly, not through the enricher, so that the enricher's own capacity
   estimate starts where a fresh ``murmur run`` starts it.)
2. overload: the server sends ``--factor`` (10) times that many posts a second for ``--seconds``
   (20), each a Bluesky post creation with a real text (``soak.RealPostRecords``); nothing else
   (no deletions, no malformed events), so every event is a post to count.
3. drain and backfill: the runtime runs on until every post is stored and the backfill has upgraded
   every firehose-labelled post (``awaiting_backfill`` back to 0).

Latency, per post: from the time its event was due to be sent to the moment the transaction that
stored it had committed. The due time is the stream's start plus ``k / rate`` for the ``k``-th post
(the event's ``time_us``, and its record's ``createdAt`` to the microsecond, which murmur keeps as
``created_at``): when the runtime pushes back, the server sends late and that lateness counts, as it
would behind a real Jetstream, which does not wait for its readers. The stored moment: a batch hook
(``BatchHook``, called by the writer just before the batch's transaction) notes the batch's posts
and ``on_batch`` (called once that transaction has committed and the runtime has counted it) stamps
them, so the figure covers the socket, the hand-off, normalizing, the gate, enrichment, the hooks
and the write. ``ingested_at`` is not the end point: it is when the oldest event of the post's batch
arrived in the hand-off (where the tiered enricher's budget starts), so it can even precede the
post's own due time ("waited" below zero).

    python bench/overload.py                       # 10x capacity for 20 s
    python bench/overload.py --seconds 60 --json   # the figures as JSON
    python bench/overload.py --quick               # smoke run (< 30 s: 2x for 1 s)

Exits with 3 when a goal is missed: a post lost or unlabelled, the 99th percentile of the latency
over the alert latency, or the backfill not done within its time limit.

Measured (2 cores shared with other work): see ``docs/enrichment.md``, Overload and backfill.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import orjson

from murmur.config import parse_config
from murmur.enrich.neural.embedder import cpu_summary
from murmur.enrich.neural.tiered import DEFAULT_BUDGET_S, TieredEnricher
from murmur.runtime import Runtime, RuntimeStats, find_upgrader
from murmur.service import build_runtime
from murmur.store import ReadServer, Store
from murmur.testing import has_shared_data
from murmur.types import Post
from soak import JetstreamProcess, RealPostRecords, StreamReport, create_event

ALERT_LATENCY_S = DEFAULT_BUDGET_S
"""The alert latency every post must be labelled within (the tiered enricher's budget)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OverloadEvents:
    """Post creations only, each record's ``createdAt`` its event's ``time_us`` to the microsecond."""

    def __init__(self, seed: int = 0) -> None:
        self.posts = RealPostRecords(seed)
        self.i = 0

    def __call__(self, time_us: int) -> bytes:
        i = self.i
        self.i += 1
        due = (_EPOCH + timedelta(microseconds=time_us)).isoformat().replace("+00:00", "Z")
        return create_event(f"did:plc:overload{i % 20_000}", f"o{i}", time_us, self.posts.record(i, due))


# --- 1. the neural tier's capacity ---------------------------------------------------------------------
def tiered_enricher(runtime: Runtime) -> TieredEnricher:
    upgrader = find_upgrader(runtime.processor.pipeline)
    if not isinstance(upgrader, TieredEnricher):
        msg = f"the runtime's pipeline has no tiered enricher (found {upgrader!r}): is enrich.tier neural?"
        raise SystemExit(msg)
    return upgrader


def measure_capacity(tiered: TieredEnricher, texts: Sequence[str], seconds: float) -> tuple[float, int]:
    """Posts/s of ``tiered``'s neural components on ``texts``, in its chunks, for about ``seconds``
    after one untimed chunk; and how many posts that took."""
    now = datetime.now(UTC)
    posts = [
        Post(
            platform="bluesky",
            post_id=f"capacity-{i}",
            created_at=now,
            ingested_at=now,
            author_key="capacity",
            text=text,
        )
        for i, text in enumerate(texts)
    ]
    chunks = [posts[i : i + tiered.chunk] for i in range(0, len(posts), tiered.chunk)]
    for comp in tiered.neural:
        comp.process(chunks[0])  # untimed: first-call costs
    done, t0 = 0, time.perf_counter()
    for chunk in chunks[1:]:
        for comp in tiered.neural:
            comp.process(chunk)
        done += len(chunk)
        if time.perf_counter() - t0 >= seconds:
            break
    return done / (time.perf_counter() - t0), done


# --- 2. when each post was stored ----------------------------------------------------------------------
class StoredClock:
    """When each post was stored, and how it was labelled (``hook`` and ``on_batch`` above)."""

    def __init__(self, firehose_models: Sequence[str] = ()) -> None:
        self.firehose_models = frozenset(firehose_models)
        self.due: dict[str, float] = {}
        """Per stored post: when its event was due to be sent (epoch seconds)."""
        self.latency: list[float] = []
        self.queued: list[float] = []
        """Per stored post: seconds from its due time to ``ingested_at`` (its batch's first arrival)."""
        self.by_firehose: list[bool] = []
        self.unlabelled = 0
        self.upgraded: set[str] = set()
        self.upgrades: list[tuple[float, int]] = []
        """Per backfill chunk written: when (before its transaction) and how many posts."""
        self._pending: list[tuple[float, bool]] = []

    def hook(self, posts: Sequence[Post]) -> Callable[[duckdb.DuckDBPyConnection], None] | None:
        """A ``BatchHook``: the writer calls it with each batch, new posts or a backfill chunk."""
        upgraded = 0
        for p in posts:
            if p.post_id in self.due:  # written before: the backfill's upgrade
                upgraded += p.post_id not in self.upgraded
                self.upgraded.add(p.post_id)
                continue
            self.due[p.post_id] = p.created_at.timestamp()
            self.queued.append((p.ingested_at - p.created_at).total_seconds())
            self.unlabelled += p.sentiment is None or p.sentiment_model is None
            self._pending.append((self.due[p.post_id], p.sentiment_model in self.firehose_models))
        if upgraded:
            self.upgrades.append((time.time(), upgraded))
        return None

    def on_batch(self, stats: RuntimeStats) -> None:
        stored = time.time()
        for due, firehose in self._pending:
            self.latency.append(stored - due)
            self.by_firehose.append(firehose)
        self._pending.clear()

    @property
    def stored(self) -> int:
        return len(self.latency)

    @property
    def firehose(self) -> int:
        return sum(self.by_firehose)


# --- 3. the run ----------------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class Phases:
    all_stored: float | None = None
    """Wall-clock time every post sent had been stored (None: not within the time limit)."""
    backfilled: float | None = None
    """Wall-clock time the backfill had upgraded every firehose-labelled post (None: not in time)."""


async def drive(
    runtime: Runtime,
    clock: StoredClock,
    total: int,
    store_limit_s: float,
    backfill_limit: Callable[[], float],
) -> Phases:
    """Runs ``runtime`` until every post is stored (within ``store_limit_s``) and upgraded (within
    ``backfill_limit()`` seconds after that)."""
    stop = asyncio.Event()
    run = asyncio.create_task(runtime.run(stop))
    phases = Phases()
    try:
        t0 = time.monotonic()
        while clock.stored < total:
            if run.done() or time.monotonic() - t0 >= store_limit_s:
                return phases
            await asyncio.sleep(0.02)
        phases.all_stored = time.time()
        limit = backfill_limit()
        while not run.done() and time.time() - phases.all_stored < limit:
            if len(clock.upgraded) >= clock.firehose and runtime.stats.awaiting_backfill == 0:
                phases.backfilled = time.time()
                break
            await asyncio.sleep(0.02)
        return phases
    finally:
        stop.set()
        await run


def store_counts(store: Store) -> dict[str, int]:
    """What the store holds, counted there: posts, those without a sentiment, by labelling model."""
    rows = store.conn.execute(
        "SELECT coalesce(sentiment_model, '(none)'), count(*), count(sentiment) FROM posts GROUP BY 1"
    ).fetchall()
    out = {"posts": sum(int(n) for _, n, _ in rows), "unlabelled": sum(int(n) - int(s) for _, n, s in rows)}
    out.update({str(model): int(n) for model, n, _ in rows})
    return out


def overload(seconds: float, factor: float, calibrate_s: float, batch: int, rate: float | None) -> Result:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=os.environ.get("OVERLOAD_DIR")) as tmp:
        path = Path(tmp) / "overload.duckdb"
        store = Store.open(path)
        reads = ReadServer(store.conn, path).start()  # as murmur run does (idle here)
        try:
            with JetstreamProcess(OverloadEvents) as server:
                config = {
                    "store": {"path": str(path)},
                    "enrich": {"tier": "neural"},
                    "sources": [{"id": "bsky", "type": "jetstream", "url": server.url}],
                }
                clock = StoredClock()
                runtime = build_runtime(
                    parse_config(config, env={}), store, batch_size=batch, on_batch=clock.on_batch
                )
                runtime.hooks.append(clock.hook)
                tiered = tiered_enricher(runtime)
                clock.firehose_models = frozenset(tiered.firehose_models)
                # Models loaded and capacity measured before the stream starts (when the runtime
                # connects), as for a service already up when a burst comes.
                assert runtime.processor.pipeline is not None
                t0 = time.perf_counter()
                runtime.processor.pipeline.warm_up()
                warm_s = time.perf_counter() - t0
                posts = RealPostRecords(seed=1)  # other texts than the stream's, cut alike
                texts = [str(posts.record(i, "")["text"]) for i in range(20_000)]
                capacity, measured = measure_capacity(tiered, texts, calibrate_s)
                send_rate = rate if rate is not None else factor * capacity
                total = max(1, round(send_rate * seconds))
                server.pace(send_rate, total)
                phases = asyncio.run(
                    drive(
                        runtime,
                        clock,
                        total,
                        store_limit_s=seconds + max(120.0, 10 * seconds),
                        backfill_limit=lambda: 60 + 3 * clock.firehose / capacity,
                    )
                )
            stream = server.report or StreamReport(0, 0.0, None)
            counts = store_counts(store)
        finally:
            reads.stop()
            store.close()
    return result(
        capacity=(capacity, measured),
        warm_s=warm_s,
        load=load_before,
        send_rate=send_rate,
        seconds=seconds,
        total=total,
        stream=stream,
        clock=clock,
        phases=phases,
        runtime=runtime,
        counts=counts,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Latency:
    """Milliseconds from a post's due time to its stored batch's commit."""

    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            return cls(math.nan, math.nan, math.nan, math.nan)
        p50, p95, p99 = np.percentile(np.asarray(seconds), [50, 95, 99]) * 1000
        return cls(float(p50), float(p95), float(p99), max(seconds) * 1000)


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    cpu: str
    load_before: tuple[float, float, float]
    model_load_s: float
    capacity: float
    """The neural tier's posts/s, measured in this run."""
    capacity_posts: int
    send_rate: float
    seconds: float
    posts: int
    """Posts the server was to send (``send_rate`` x ``seconds``)."""
    sent: int
    send_s: float
    """Seconds the server took to send them (longer than ``seconds``: the runtime pushed back)."""
    stored: int
    stored_in_store: int
    quarantined: int
    reconnects: int
    unlabelled: int
    labelled_neural: int
    labelled_firehose: int
    all_stored_s: float | None
    """Seconds from the stream's start until the last post was stored."""
    latency: Latency
    latency_neural: Latency
    latency_firehose: Latency
    queued: Latency
    """Of the latency, the part before processing: due time to ``ingested_at`` (the socket, the
    hand-off; the tiered enricher's budget counts from ``ingested_at``)."""
    backfill_s: float | None
    """Seconds from the last post stored until every firehose-labelled post was upgraded."""
    backfill_idle_s: float
    upgraded: int
    upgrade_rate: float | None
    """Posts/s upgraded once the backfill had started (after ``backfill_idle_s``)."""
    awaiting_backfill: int | None
    store_models: dict[str, int]

    @property
    def factor(self) -> float:
        return self.send_rate / self.capacity

    @property
    def lost(self) -> int:
        return self.posts - min(self.stored, self.stored_in_store)

    @property
    def throughput(self) -> float | None:
        return self.stored / self.all_stored_s if self.all_stored_s else None

    @property
    def goals(self) -> dict[str, bool]:
        return {
            "nothing lost": self.lost == 0 and self.sent == self.posts,
            "every post labelled": self.unlabelled == 0,
            f"p99 <= {ALERT_LATENCY_S:g} s": self.latency.p99 <= ALERT_LATENCY_S * 1000,
            "backfill done": self.backfill_s is not None and self.upgraded == self.labelled_firehose,
        }

    def as_dict(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out.update(factor=self.factor, lost=self.lost, throughput=self.throughput, goals=self.goals)
        out["ok"] = all(self.goals.values())
        return out


def result(
    *,
    capacity: tuple[float, int],
    warm_s: float,
    load: tuple[float, float, float],
    send_rate: float,
    seconds: float,
    total: int,
    stream: StreamReport,
    clock: StoredClock,
    phases: Phases,
    runtime: Runtime,
    counts: dict[str, int],
) -> Result:
    lat = clock.latency
    idle_s = runtime.backfill_idle_seconds
    started = (phases.all_stored or 0.0) + idle_s  # the backfill's start, at the earliest
    late_upgrades = sum(n for t, n in clock.upgrades if t >= started)
    done = phases.backfilled
    return Result(
        cpu=cpu_summary(),
        load_before=load,
        model_load_s=warm_s,
        capacity=capacity[0],
        capacity_posts=capacity[1],
        send_rate=send_rate,
        seconds=seconds,
        posts=total,
        sent=stream.sent,
        send_s=(stream.finished or time.time()) - stream.started,
        stored=clock.stored,
        stored_in_store=counts.pop("posts"),
        quarantined=runtime.stats.quarantined,
        reconnects=sum(c.reconnects for c in runtime.stats.sources.values()),
        unlabelled=max(clock.unlabelled, counts.pop("unlabelled")),
        labelled_neural=clock.stored - clock.firehose,
        labelled_firehose=clock.firehose,
        all_stored_s=phases.all_stored - stream.started if phases.all_stored is not None else None,
        latency=Latency.of(lat),
        latency_neural=Latency.of([x for x, f in zip(lat, clock.by_firehose, strict=True) if not f]),
        latency_firehose=Latency.of([x for x, f in zip(lat, clock.by_firehose, strict=True) if f]),
        queued=Latency.of(clock.queued),
        backfill_s=done - phases.all_stored if done is not None and phases.all_stored else None,
        backfill_idle_s=idle_s,
        upgraded=len(clock.upgraded),
        upgrade_rate=late_upgrades / (done - started) if done is not None and late_upgrades else None,
        awaiting_backfill=runtime.stats.awaiting_backfill,
        store_models=counts,
    )


def _f(x: float | None, fmt: str = ",.0f") -> str:
    return "-" if x is None or math.isnan(x) else f"{x:{fmt}}"


def report(r: Result) -> None:
    def share(n: int) -> str:
        return f"{n:,} ({n / max(r.stored, 1):.0%})"

    load = " ".join(f"{x:.2f}" for x in r.load_before)
    print(f"cpu: {r.cpu}; load average before the run: {load}")
    print(
        f"neural tier capacity: {_f(r.capacity)} posts/s (e5 embed + sentiment, {r.capacity_posts:,} "
        f"real texts in chunks of 64; models loaded in {r.model_load_s:.1f} s)"
    )
    print(
        f"input: {_f(r.send_rate)} posts/s ({r.factor:.1f}x capacity) for {r.seconds:g} s = {r.posts:,} "
        f"posts; the server sent {r.sent:,} in {r.send_s:.1f} s"
    )
    rows = [
        (
            "stored",
            f"{r.stored:,} of {r.posts:,} (the store counts {r.stored_in_store:,}); lost {r.lost:,}",
        ),
        ("quarantined, reconnects", f"{r.quarantined:,}, {r.reconnects:,}"),
        ("unlabelled", f"{r.unlabelled:,}"),
        ("labelled by the neural tier", share(r.labelled_neural)),
        ("labelled by the firehose tier", share(r.labelled_firehose)),
        ("all stored after", f"{_f(r.all_stored_s, '.1f')} s ({_f(r.throughput)} posts/s)"),
    ]
    for name, value in rows:
        print(f"  {name:<32} {value}")
    print(f"  {'latency, due -> stored (ms)':<32} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for name, d in (
        ("all posts", r.latency),
        ("  labelled by the neural tier", r.latency_neural),
        ("  by the firehose tier", r.latency_firehose),
        ("  waited before processing", r.queued),
    ):
        print(f"  {name:<32} " + " ".join(f"{_f(x):>8}" for x in (d.p50, d.p95, d.p99, d.max)))
    print(
        f"  {'backfill':<32} {r.upgraded:,} upgraded; done {_f(r.backfill_s, '.1f')} s after the last post "
        f"was stored (it starts after {r.backfill_idle_s:g} s idle), {_f(r.upgrade_rate)} posts/s; "
        f"awaiting_backfill {r.awaiting_backfill}"
    )
    print(f"  {'in the store, posts by model':<32} {r.store_models}")
    verdict = ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in r.goals.items())
    print(f"verdict: {'ok' if all(r.goals.values()) else 'FAILED'} ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the input lasts")
    parser.add_argument("--factor", type=float, default=10.0, help="input rate, times the measured capacity")
    parser.add_argument("--rate", type=float, default=None, help="posts/s (instead of --factor)")
    parser.add_argument("--calibrate", type=float, default=5.0, help="seconds measuring the capacity")
    parser.add_argument("--batch", type=int, default=2000, help="posts per batch (murmur run's 2000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2x capacity for 1 s")
    args = parser.parse_args()
    if not has_shared_data():
        raise SystemExit("bench/overload.py needs ../shared/data (real texts and payloads); not found")
    if args.quick:
        args.seconds, args.factor, args.calibrate = 1.0, 2.0, 0.5
    r = overload(args.seconds, args.factor, args.calibrate, args.batch, args.rate)
    if args.json:
        print(orjson.dumps(r.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())
    else:
        report(r)
    if not all(r.goals.values()):
        sys.exit(3)


if __name__ == "__main__":
    main()
