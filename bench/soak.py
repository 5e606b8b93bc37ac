"""Soak: does ``murmur run`` stay flat, in memory and in throughput, when it runs for a long time?

Drives the runtime ``murmur run`` builds (``service.build_runtime``: the privacy gate, the firehose
tier in worker processes by default, the query layer's hooks with a few live monitors, the one
DuckDB writer, the status file) from the Jetstream source, connected over loopback to an endless
Jetstream server in a process of its own. The server makes every event on the fly from the real
Bluesky records and real texts (``testing.real_text_pool``, ~65,000 texts; after one pass each text
is paired with another, so texts do not repeat and no cache is flattered), with deletions of earlier
posts (1 in 20), identity events (1 in 100) and malformed payloads (1 in 250: undecodable bytes, or a
record whose text is not a string), as fast as the runtime takes them or at ``--rate``.

Every ``--every`` seconds it samples: posts stored, posts/s over the last window, the RSS of every
murmur process (the runtime's own and its workers; the server is left out) and its peak, the
memory DuckDB's buffer manager holds, Arrow's allocations, Python's allocated blocks in the
runtime's process, the store file, and the long-lived structures within reach (near-duplicate
index, live monitors, the search index's token cache, ``content_tokens``' LRU in the runtime's
process, the hand-off queue). Then a verdict over the samples after warm-up (the first fifth):
RSS slope per 100,000 posts (least squares) and throughput drift (last third against first third).

    python bench/soak.py --minutes 5                 # firehose tier, as fast as it goes
    python bench/soak.py --minutes 5 --rate 2000     # a fixed rate (posts/s)
    python bench/soak.py --minutes 5 --tier neural
    python bench/soak.py --quick                     # smoke run (< 30 s)

Measured (2 shared cores, firehose tier, 2 workers, 6 monitors, as fast as it goes; more in
``docs/architecture.md``, Soak):

* before the store's batched deletions: 4 min, 598,496 posts, RSS 1,688 -> 2,336 MB after warm-up,
  +155 MB per 100k posts; 2,523 -> 1,670 posts/s (drift -34 %): one DELETE per deleted post and table,
  each a scan of the table.
* after: 3 min, 677,792 posts, RSS 1,631 -> 2,180 MB, +104 MB per 100k posts (+92 of it DuckDB's
  buffer cache: table blocks 532 MB and ART indexes 88 MB at the end); 3,430 -> 3,614 posts/s (+5 %).
* the same with ``--memory-limit 300MB``: 2 min, 504,096 posts, RSS 1,586 -> 1,665 MB, +15 MB per
  100k posts (DuckDB +7: the ART indexes of the primary keys, which stay in memory); Python objects,
  Arrow, the near-duplicate index, the token caches and the hand-off stay flat throughout.
* with ``store.memory_limit`` (default ``25%``, here 5.8 GiB; ``--memory-limit`` sets it), 3-4 min
  each on 2 cores shared with other jobs (load 5-9, so posts/s compare nothing): no limit +125 MB per
  100k posts (DuckDB +92); the default, not reached in 3 min, +179 (DuckDB +122); ``100MB``: +68
  overall, +23 (DuckDB +12) once reached, RSS 1,476 -> 1,482 MB over the last 64,000 posts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import orjson
import psutil
import pyarrow as pa
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

import murmur.query.index as query_index
from enrich import LIVE_MONITORS, PeakRss, ProcessTree
from murmur.config import DEFAULT_MEMORY_LIMIT, parse_config
from murmur.enrich.neardup import NearDupClusters
from murmur.enrich.text import content_tokens
from murmur.query.live import QueryLayerHook
from murmur.query.monitors import add_monitor
from murmur.runtime import QueueHandoff, Runtime
from murmur.service import build_runtime
from murmur.store import ReadServer, Store
from murmur.testing import has_shared_data, real_text_pool, shared_data
from murmur.testing_servers import JetstreamReplayServer

MONITORS = LIVE_MONITORS
"""Live monitors: the first queries of ``bench/monitors.py``'s history set."""


# --- the endless stream --------------------------------------------------------------------------------
EventMaker = Callable[[int], bytes]
"""Makes the next event of a stream, given its ``time_us`` (when it is due to be sent)."""


class RealPostRecords:
    """Bluesky post records carrying real texts (``testing.real_text_pool``): the ``i``-th has text ``i``
    of the pool, and after one pass each text paired with another, so texts do not repeat."""

    def __init__(self, seed: int = 0) -> None:
        self.texts = real_text_pool(seed)
        self.records = [
            orjson.loads(shared_data("payloads", "bluesky", name).read_bytes())["value"]
            for name in ("post_record.json", "extended_post_record.json")
        ]

    def record(self, i: int, created_at: str) -> dict[str, object]:
        texts = self.texts
        n, j = len(texts), i % len(texts)
        text = texts[j] if i < n else f"{texts[j][:150]} {texts[(j + 7919 * (i // n)) % n][:150]}"
        return dict(self.records[i % len(self.records)], text=text[:300], createdAt=created_at)


def create_event(did: str, rkey: str, time_us: int, record: dict[str, object]) -> bytes:
    """A Jetstream commit event creating the post ``record`` at ``at://did/app.bsky.feed.post/rkey``."""
    commit = {
        "rev": f"r{rkey}",
        "operation": "create",
        "collection": "app.bsky.feed.post",
        "rkey": rkey,
        "record": record,
        "cid": f"c{rkey}",
    }
    return orjson.dumps({"did": did, "time_us": time_us, "kind": "commit", "commit": commit})


class SoakEvents:
    """Jetstream events for ever, each made when asked for (see module doc)."""

    def __init__(self, seed: int = 0) -> None:
        self.posts = RealPostRecords(seed)
        self.created: collections.deque[tuple[str, str]] = collections.deque(maxlen=1000)
        self.i = 0

    def __call__(self, time_us: int) -> bytes:
        i = self.i
        self.i += 1
        did = f"did:plc:soak{i % 20_000}"
        if i % 250 == 125:
            return b'{"did": "' + did.encode() + b'", "time_us": ' + b"\x00not json"
        if i % 100 == 50:
            identity = {"did": did, "time_us": time_us, "kind": "identity", "identity": {"did": did}}
            return orjson.dumps(identity)
        if i % 20 == 10 and self.created:
            old_did, rkey = self.created.popleft()
            commit = {"rev": f"r{i}", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": rkey}
            return orjson.dumps({"did": old_did, "time_us": time_us, "kind": "commit", "commit": commit})
        record = self.posts.record(i, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if i % 250 == 0:
            record["text"] = 42  # a malformed record: the normalizer quarantines it
        rkey = f"s{i}"
        self.created.append((did, rkey))
        return create_event(did, rkey, time_us, record)


class EndlessJetstream(JetstreamReplayServer):
    """``JetstreamReplayServer`` serving events from ``make`` (one stream, continued on a reconnect)
    instead of a fixed list, at ``rate`` events/s (0: as fast as the client reads), ``limit`` events
    in all (None: no end; after the last the connection stays open, idle).

    At a fixed rate each event's ``time_us`` is when it was due (the first connection's start plus
    ``k / rate``), not when it left: a runtime that pushes back makes its events late, and the
    lateness shows (as it would behind a real Jetstream, which does not wait for its readers)."""

    def __init__(self, make: EventMaker, rate: float, limit: int | None = None) -> None:
        super().__init__([])
        self.make = make
        self.rate = rate
        self.limit = limit
        self.started = 0.0
        """Wall-clock time (epoch seconds) the stream began: the first connection."""
        self.finished: float | None = None
        """Wall-clock time the last of ``limit`` events left (None: not yet, or no limit)."""
        self._last_us = 0

    def _time_us(self, k: int) -> int:
        due = self.started + k / self.rate if self.rate else time.time()
        self._last_us = max(int(due * 1_000_000), self._last_us + 1)  # cursors need them increasing
        return self._last_us

    def _handle(self, connection: ServerConnection) -> None:
        if not self.started:
            self.started = time.time()
        with contextlib.suppress(ConnectionClosed):  # the runtime stopped
            while not self._stop.is_set():
                if self.limit is not None and self.sent >= self.limit:
                    self._stop.wait(0.05)
                    continue
                due = int((time.time() - self.started) * self.rate) - self.sent if self.rate else 256
                if self.limit is not None:
                    due = min(due, self.limit - self.sent)
                for _ in range(due):
                    connection.send(self.make(self._time_us(self.sent)), text=True)
                    self.sent += 1
                if self.limit is not None and self.sent >= self.limit and self.finished is None:
                    self.finished = time.time()
                if self.rate:
                    self._stop.wait(0.01)


@dataclasses.dataclass(frozen=True, slots=True)
class StreamReport:
    sent: int
    started: float
    finished: float | None


def _serve(make: Callable[[], EventMaker], rate: float, limit: int | None, conn: Connection) -> None:
    """The server's process: serve until the parent says stop (or is gone), then report."""
    server = EndlessJetstream(make(), rate, limit)
    with server:
        conn.send(server.url)
        with contextlib.suppress(EOFError):
            while (message := conn.recv()) != "stop":  # (rate, limit): ``JetstreamProcess.pace``
                server.rate, server.limit = message
                conn.send("paced")
        conn.send(StreamReport(server.sent, server.started, server.finished))


class JetstreamProcess:
    """An ``EndlessJetstream`` in a process of its own, so that making and sending events takes no
    CPU time from the runtime's process (``make`` builds the event maker there; it must pickle)::

        with JetstreamProcess(SoakEvents, rate=0) as server:
            ...  # connect to server.url
        server.report  # events sent, when the stream started and finished
    """

    def __init__(self, make: Callable[[], EventMaker], rate: float = 0.0, limit: int | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._here, there = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve, args=(make, rate, limit, there), name="bench-jetstream", daemon=True
        )
        self.url = ""
        self.report: StreamReport | None = None

    @property
    def pid(self) -> int:
        return self._process.pid or 0

    def pace(self, rate: float, limit: int | None = None) -> None:
        """Sets the rate and the limit, before the first connection (the stream starts then)."""
        self._here.send((rate, limit))
        self._here.recv()

    def __enter__(self) -> JetstreamProcess:
        self._process.start()
        self.url = self._here.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._here.send("stop")
        if self._here.poll(30):
            self.report = self._here.recv()
        self._process.join(10)


# --- sampling ------------------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class Sample:
    t: float
    posts: int
    rate: float
    rss_mb: float
    main_mb: float
    peak_mb: float
    duckdb_mb: float
    arrow_mb: float
    py_kblocks: float
    store_mb: float
    sizes: dict[str, int]
    duckdb_tags: dict[str, float]
    """DuckDB's buffer memory by tag (MB): table data, ART indexes, the write-ahead log's tables."""


class Sampler:
    """Takes a ``Sample`` of ``runtime`` every ``every`` seconds, in a thread of its own."""

    def __init__(self, runtime: Runtime, store_path: Path, peak: PeakRss, every: float, server: int) -> None:
        self.runtime = runtime
        self.store_path = store_path
        self.peak = peak
        self.every = every
        self.samples: list[Sample] = []
        self._tree = ProcessTree(exclude=(server,))
        self._db = runtime.store.conn.cursor()  # its own connection: the writer's is busy
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.take()

    def take(self) -> Sample:
        rt = self.runtime
        rss = main = 0
        for proc in self._tree.processes():
            try:
                mem = proc.memory_info().rss
            except psutil.Error:
                continue
            rss += mem
            main += mem if proc.pid == self._tree.me.pid else 0
        tags = {
            str(tag): int(used) / 1e6
            for tag, used in self._db.execute(
                "SELECT tag, memory_usage_bytes FROM duckdb_memory()"
            ).fetchall()
            if used
        }
        files = [self.store_path, self.store_path.with_name(self.store_path.name + ".wal")]
        t = time.monotonic() - self._t0
        posts = rt.stats.posts
        last = self.samples[-1] if self.samples else None
        rate = (posts - last.posts) / (t - last.t) if last else posts / t
        sample = Sample(
            t=t,
            posts=posts,
            rate=rate,
            rss_mb=rss / 1e6,
            main_mb=main / 1e6,
            peak_mb=self.peak.peak / 1e6,
            duckdb_mb=sum(tags.values()),
            arrow_mb=pa.total_allocated_bytes() / 1e6,
            py_kblocks=sys.getallocatedblocks() / 1e3,
            store_mb=sum(f.stat().st_size for f in files if f.exists()) / 1e6,
            sizes=structure_sizes(rt),
            duckdb_tags=tags,
        )
        self.samples.append(sample)
        return sample

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._db.close()


def structure_sizes(rt: Runtime) -> dict[str, int]:
    """Entries in the runtime process's long-lived structures (those in the workers are out of reach)."""
    pipeline = rt.ordered if rt.ordered is not None else rt.processor.pipeline
    components = pipeline.components if pipeline is not None else []
    neardup = [len(c.index) for c in components if isinstance(c, NearDupClusters)]
    hooks = [h for h in rt.hooks if isinstance(h, QueryLayerHook)]
    return {
        "neardup": sum(neardup),
        "monitors": sum(len(h.stage.matcher) for h in hooks),
        "tokcache": sum(
            f.cache_info().currsize
            for f in (query_index.key_value, query_index._site_keys, query_index._lang_keys)
        ),
        "lru": content_tokens.cache_info().currsize,
        "handoff": len(rt.handoff._items) if isinstance(rt.handoff, QueueHandoff) else -1,
        "sources": len(rt.stats.sources),
        "timings": len(rt.timings),
    }


# --- the run -------------------------------------------------------------------------------------------
async def _run_for(runtime: Runtime, seconds: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    await runtime.run(stop)


def soak(
    tier: str,
    minutes: float,
    rate: float,
    workers: int | None,
    batch: int,
    every: float,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> list[Sample]:
    with (
        JetstreamProcess(SoakEvents, rate) as server,
        tempfile.TemporaryDirectory(dir=os.environ.get("SOAK_DIR")) as tmp,
    ):
        path = Path(tmp) / "soak.duckdb"
        cfg = parse_config(
            {
                "store": {"path": str(path)},
                "enrich": {"tier": tier, "workers": workers},
                "sources": [{"id": "bsky", "type": "jetstream", "url": server.url}],
            },
            env={},
        )
        store = Store.open(path, memory_limit=memory_limit)
        (limit,) = store.conn.execute("SELECT current_setting('memory_limit')").fetchall()[0]
        for k, query in enumerate(MONITORS):
            add_monitor(store.conn, f"m{k}", query, backfill=False)
        reads = ReadServer(store.conn, path).start()  # as murmur run does (idle here)
        runtime = build_runtime(cfg, store, batch_size=batch)
        processes = runtime.workers.workers if runtime.workers is not None else 1
        try:
            with (
                PeakRss(exclude=(server.pid,)) as peak,
                Sampler(runtime, path, peak, every, server.pid) as s,
            ):
                s.take()
                asyncio.run(_run_for(runtime, minutes * 60))
        finally:
            reads.stop()
            store.close()
        quarantined = runtime.stats.quarantined
        print(
            f"soak[{tier}]: {runtime.stats.posts:,} posts stored, {runtime.stats.deletions:,} deletions, "
            f"{quarantined:,} quarantined, {runtime.stats.batches:,} batches in {minutes:g} min "
            f"(rate: {'as fast as it goes' if not rate else f'{rate:g}/s'}, batch {batch}, "
            f"{processes} worker process(es), {len(MONITORS)} monitors, "
            f"store.memory_limit {memory_limit!r} = {limit})"
        )
    return s.samples


# --- the report ----------------------------------------------------------------------------------------
def slope_per_100k(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` against ``xs`` (posts), per 100,000 posts."""
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 1e5 if var else float("nan")


def _rate(a: Sample, b: Sample) -> float:
    return (b.posts - a.posts) / (b.t - a.t) if b.t > a.t else float("nan")


def report(samples: list[Sample]) -> dict[str, float]:
    keys = list(samples[-1].sizes)
    print(
        f"{'t s':>6} {'posts':>9} {'posts/s':>8} {'RSS MB':>7} {'main':>6} {'peak':>6} {'duckdb':>7} "
        f"{'arrow':>6} {'pyblk k':>7} {'store':>6} " + " ".join(f"{k:>8}" for k in keys)
    )
    for s in samples:
        print(
            f"{s.t:6.0f} {s.posts:9,} {s.rate:8,.0f} {s.rss_mb:7.0f} {s.main_mb:6.0f} {s.peak_mb:6.0f} "
            f"{s.duckdb_mb:7.1f} {s.arrow_mb:6.1f} {s.py_kblocks:7.0f} {s.store_mb:6.0f} "
            + " ".join(f"{s.sizes.get(k, -1):8,}" for k in keys)
        )
    for s in (samples[len(samples) // 2], samples[-1]):
        tags = ", ".join(f"{k} {v:.0f}" for k, v in sorted(s.duckdb_tags.items(), key=lambda kv: -kv[1]))
        print(f"DuckDB buffers at {s.t:.0f} s (MB): {tags}")
    warm = [s for s in samples if s.t >= samples[-1].t / 5 and s.posts > 0]
    if len(warm) < 3:
        print("verdict: too few samples after warm-up (run longer, or sample more often)")
        return {}
    posts = [float(s.posts) for s in warm]
    out = {
        "rss": slope_per_100k(posts, [s.rss_mb for s in warm]),
        "main": slope_per_100k(posts, [s.main_mb for s in warm]),
        "duckdb": slope_per_100k(posts, [s.duckdb_mb for s in warm]),
        "arrow": slope_per_100k(posts, [s.arrow_mb for s in warm]),
        "pyblocks": slope_per_100k(posts, [s.py_kblocks * 1e3 for s in warm]),
    }
    third = (warm[-1].t - warm[0].t) / 3
    first = _rate(warm[0], min(warm, key=lambda s: abs(s.t - warm[0].t - third)))
    last = _rate(min(warm, key=lambda s: abs(s.t - warm[-1].t + third)), warm[-1])
    out["first_rate"], out["last_rate"] = first, last
    out["drift"] = last / first - 1
    print(
        f"after warm-up (t >= {warm[0].t:.0f} s, {warm[0].posts:,} to {warm[-1].posts:,} posts): "
        f"RSS {warm[0].rss_mb:.0f} -> {warm[-1].rss_mb:.0f} MB, slope {out['rss']:+.1f} MB per 100k posts "
        f"(runtime's process {out['main']:+.1f}, DuckDB buffers {out['duckdb']:+.1f}, "
        f"Arrow {out['arrow']:+.2f}, "
        f"Python blocks {out['pyblocks']:+,.0f})"
    )
    print(
        f"throughput: first third {first:,.0f} posts/s, last third {last:,.0f} posts/s, "
        f"drift {out['drift']:+.1%}"
    )
    flat = out["rss"] < 5 and out["drift"] > -0.10
    print(
        "verdict: "
        + ("flat" if flat else "NOT flat")
        + f" (RSS slope {out['rss']:+.1f} MB/100k posts, goal < 5; drift {out['drift']:+.1%}, goal > -10 %)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--tier", choices=["firehose", "neural", "none"], default="firehose")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="events/s from the server (0: as fast as it goes)"
    )
    parser.add_argument("--workers", type=int, default=None, help="default: as murmur run would choose")
    parser.add_argument("--batch", type=int, default=2000, help="posts per batch (murmur run's 2000)")
    parser.add_argument(
        "--every", type=float, default=None, help="seconds between samples (default: 10; 2 quick)"
    )
    parser.add_argument(
        "--memory-limit",
        default=DEFAULT_MEMORY_LIMIT,
        help="store.memory_limit (default: murmur's, %(default)s; DuckDB's own is 80%%)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 12 s, a sample every 2 s")
    args = parser.parse_args()
    if not has_shared_data():
        raise SystemExit("bench/soak.py needs ../shared/data (real payloads); not found")
    minutes = 0.2 if args.quick else args.minutes
    every = args.every or (2.0 if args.quick else 10.0)
    samples = soak(args.tier, minutes, args.rate, args.workers, args.batch, every, args.memory_limit)
    report(samples)


if __name__ == "__main__":
    main()
