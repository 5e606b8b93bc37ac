"""Firehose enrichment tier, function level: posts/s per component and for the whole pipeline, peak
RSS, and the named peers measured in the same run (pycld2 alone for language, VADER for sentiment).

    python bench/enrich_firehose.py            # ~20,000 real texts, a few passes
    python bench/enrich_firehose.py --quick    # smoke run, < 20 s

The texts are real: lingua's language-ID sentences (75 languages), XLM-T tweets (8 languages) and
Reddit comments and posts, shuffled together. Components run on batches (``--batch``) as the
runtime calls them, in one process on one core; end to end (raw JSON → stored rows) is measured by
the runtime's own benchmark.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import threadpoolctl

from murmur.enrich import firehose_pipeline
from murmur.enrich.base import Pipeline
from murmur.enrich.evaluate import load_langid, load_xlmt
from murmur.enrich.langid import LanguageDetector
from murmur.enrich.langid_cld2 import cld2_only
from murmur.enrich.neural.embedder import cpu_summary
from murmur.testing import has_shared_data, shared_data
from murmur.types import Post


def real_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pools: list[list[str]] = []
    lingua = [
        t
        for d in load_langid(shared_data("langid", "lingua", "sentences"), per_language=200)
        for t in d.texts
    ]
    pools.append(lingua)
    xlmt = [
        t
        for split in ("train", "val")
        for d in load_xlmt(shared_data("sentiment", "xlmt"), split)
        for t in d.texts
    ]
    pools.append(xlmt)
    reddit: list[str] = []
    with shared_data("payloads", "reddit", "things.jsonl").open("rb") as f:
        for line in f:
            d = orjson.loads(line).get("data", {})
            t = (d.get("body") or f"{d.get('title') or ''} {d.get('selftext') or ''}").strip()
            if len(t) > 10:
                reddit.append(t[:2000])
    pools.append(reddit)
    per = n // len(pools) + 1
    texts = [t for pool in pools for t in rng.sample(pool, min(per, len(pool)))]
    rng.shuffle(texts)
    return texts[:n]


def posts_of(texts: Sequence[str]) -> list[Post]:
    now = datetime.now(UTC)
    return [
        Post(platform="file", post_id=str(i), created_at=now, ingested_at=now, author_key="k", text=t)
        for i, t in enumerate(texts)
    ]


def batches(items: Sequence[Post], size: int) -> list[Sequence[Post]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 3,000 texts, one pass")
    p.add_argument("--texts", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--passes", type=int, default=2, help="timed passes over the texts (after a warm-up)")
    args = p.parse_args(argv)
    if not has_shared_data():
        print("bench/enrich_firehose.py needs ../shared/data (set MURMUR_SHARED)", file=sys.stderr)
        return 2
    # one math thread, as in the runtime's workers: else NumPy's BLAS threads spin on the other core
    # and the CPU figures count them (langid read 150 instead of ~65 us a post)
    threadpoolctl.threadpool_limits(1)
    n = 3000 if args.quick else args.texts
    passes = 1 if args.quick else args.passes
    texts = real_texts(n)
    print(
        f"{len(texts)} real texts (lingua sentences, XLM-T tweets, Reddit), "
        f"batch {args.batch}, {passes} pass(es)"
    )
    print(
        f"mean length {sum(map(len, texts)) / len(texts):.0f} characters; "
        f"peak RSS before models {peak_rss_mb():.0f} MB"
    )

    # warm-up: load every model and build every cache once (not timed)
    warm = firehose_pipeline()
    for batch in batches(posts_of(real_texts(min(n, 5000), seed=1)), args.batch):
        warm.process(batch)

    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    routed = 0.0
    for _ in range(passes):
        pipe: Pipeline = firehose_pipeline()
        posts = posts_of(texts)
        for batch in batches(posts, args.batch):
            for comp in pipe.components:
                w0, c0 = time.perf_counter(), time.process_time()
                comp.process(batch)
                wall[comp.name] = wall.get(comp.name, 0.0) + time.perf_counter() - w0
                cpu[comp.name] = cpu.get(comp.name, 0.0) + time.process_time() - c0
        det = getattr(pipe.components[0], "detector", None)
        if isinstance(det, LanguageDetector):
            routed = det.stats.routed_fraction
    done = n * passes
    print()
    print(f"cpu: {cpu_summary()}")
    print(f"{'component':34} {'posts/s (wall)':>15} {'posts/s (CPU)':>14} {'CPU µs/post':>12}")
    for name in wall:
        w, c = wall[name], cpu[name]
        print(f"{name:34} {done / w:>15,.0f} {done / c:>14,.0f} {1e6 * c / done:>12.1f}")
    tw, tc = sum(wall.values()), sum(cpu.values())
    print(
        f"{'firehose pipeline, one core':34} {done / tw:>15,.0f} {done / tc:>14,.0f} {1e6 * tc / done:>12.1f}"
    )
    print(f"language ID: {routed:.1%} of posts routed to the second opinion (langid.py + lingua)")

    # peers, same texts, same process
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    peer_n = min(n, 5000)
    c0 = time.process_time()
    for t in texts[:peer_n]:
        cld2_only(t)
    c1 = time.process_time()
    for t in texts[:peer_n]:
        sia.polarity_scores(t)
    c2 = time.process_time()
    print()
    print(f"peer pycld2 alone (cleaned, bestEffort)   {peer_n / (c1 - c0):>10,.0f} posts/s (CPU)")
    print(f"peer VADER (vaderSentiment)               {peer_n / (c2 - c1):>10,.0f} posts/s (CPU)")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
