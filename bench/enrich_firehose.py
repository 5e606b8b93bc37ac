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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson

from murmur.enrich import firehose_pipeline
from murmur.enrich.base import Pipeline
from murmur.enrich.evaluate import load_langid, load_xlmt
from murmur.enrich.langid import LanguageDetector, cld2_only
from murmur.testing import has_shared_data, shared_data
from murmur.types import Post


def real_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pools: list[list[str]] = []
    lingua = [t for d in load_langid(shared_data("langid", "lingua", "sentences"), per_language=200) for t in d.texts]
    pools.append(lingua)
    xlmt = [t for split in ("train", "val") for d in load_xlmt(shared_data("sentiment", "xlmt"), split) for t in d.texts]
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


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


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
    n = 3000 if args.quick else args.texts
    passes = 1 if args.quick else args.passes
    texts = real_texts(n)
    print(f"{len(texts)} real texts (lingua sentences, XLM-T tweets, Reddit), batch {args.batch}, {passes} pass(es)")
    print(f"mean length {sum(map(len, texts)) / len(texts):.0f} characters; peak RSS before models {peak_rss_mb():.0f} MB")

    # warm-up: load every model once (not timed)
    warm = firehose_pipeline()
    warm.process(posts_of(texts[:200]))

    totals: dict[str, float] = {}
    routed = 0.0
    for _ in range(passes):
        pipe: Pipeline = firehose_pipeline()
        posts = posts_of(texts)
        for batch in batches(posts, args.batch):
            for comp in pipe.components:
                totals[comp.name] = totals.get(comp.name, 0.0) + timed(lambda c=comp, b=batch: c.process(b))
        lang = pipe.components[0]
        det = getattr(lang, "detector", None)
        if isinstance(det, LanguageDetector):
            routed = det.stats.routed_fraction
    done = n * passes
    print()
    print(f"{'component':34} {'posts/s':>10} {'µs/post':>9}")
    for name, secs in totals.items():
        print(f"{name:34} {done / secs:>10,.0f} {1e6 * secs / done:>9.1f}")
    total = sum(totals.values())
    print(f"{'firehose pipeline (sum, 1 core)':34} {done / total:>10,.0f} {1e6 * total / done:>9.1f}")
    print(f"language ID: {routed:.1%} of posts routed to the second opinion (langid.py + lingua)")

    # peers, same texts, same process
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    peer_n = min(n, 5000)
    t_cld2 = timed(lambda: [cld2_only(t) for t in texts[:peer_n]])
    t_vader = timed(lambda: [sia.polarity_scores(t) for t in texts[:peer_n]])
    print()
    print(f"peer pycld2 alone (cleaned, bestEffort)   {peer_n / t_cld2:>10,.0f} posts/s")
    print(f"peer VADER (vaderSentiment)               {peer_n / t_vader:>10,.0f} posts/s")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
