"""Ingest throughput: raw platform JSON → normalized → privacy gate → stored, no NLP.

Replays real payloads (Reddit things, Mastodon statuses, Bluesky records in Jetstream envelopes)
from ../shared/data/payloads, each copied with fresh ids until the wanted count, through the same
runtime ``murmur run`` uses (``ListSource`` → hand-off → batcher → normalize → gate → DuckDB file).

    python bench/ingest.py               # 200,000 posts
    python bench/ingest.py --posts 5000  # quick smoke run

Goal (issue 2): ≥ 10,000 posts/s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from murmur.privacy import PrivacyGate
from murmur.runtime import Processor, Runtime
from murmur.store import Store
from murmur.testing import ListSource, has_shared_data, real_payload_mix


async def run(payloads: dict[str, list[bytes]], db: Path, batch: int) -> tuple[float, int, int]:
    store = Store.open(db)
    sources = [ListSource(fmt, fmt, items) for fmt, items in payloads.items()]
    runtime = Runtime(
        store, sources, Processor(PrivacyGate(key_file=db.with_suffix(".keys"))), batch_size=batch
    )
    t0 = time.perf_counter()
    stats = await runtime.run()
    elapsed = time.perf_counter() - t0
    stored = store.conn.execute("SELECT count(*) FROM posts").fetchone()
    store.close()
    return elapsed, stats.posts, int(stored[0]) if stored else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    if not has_shared_data():
        raise SystemExit("bench/ingest.py needs ../shared/data (real payloads); not found")
    payloads = real_payload_mix(args.posts)
    total = sum(len(v) for v in payloads.values())
    raw_mb = sum(len(p) for v in payloads.values() for p in v) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, posts, stored = asyncio.run(run(payloads, Path(tmp) / "bench.duckdb", args.batch))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ingest: {total:,} raw payloads ({raw_mb:.1f} MB JSON) -> {stored:,} stored posts")
    print(
        f"ingest: {elapsed:.2f} s, {posts / elapsed:,.0f} posts/s (goal >= 10,000), peak RSS {rss_mb:.0f} MB"
    )
    if stored != posts:
        raise SystemExit(f"stored {stored} != processed {posts}")


if __name__ == "__main__":
    main()
