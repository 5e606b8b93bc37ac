"""How optimistic is the neural tier's XLM-T val figure? An estimate for the withheld test split.

    python bench/sentiment_holdout.py [--quick] [--repeats 50] [--bootstrap 2000]

The shipped head's mixture weights (members / branch / lexical) were chosen on XLM-T val, so its
val macro-F1 is optimistic. This runs the shipped tier as ``murmur eval`` runs
it (default backend, detected languages routing the lexical part), keeps the three parts'
probabilities, then ``--repeats`` times, in every language, splits val at random into halves A and
B, chooses the mixture on A exactly as the trainer does (0.1 grid) and scores it on B. The mean of
the B scores is an estimate of what a mixture chosen on 324 tweets a language gives on unseen
tweets; the gap to the A scores is the selection's optimism. It does not undo the hyper-parameter
sweeps (those were made on all of val), so the true test figure is likely a
little lower still. A bootstrap over tweets (within each language) gives the shipped mixture's 95 %
interval on val. The test splits are not read.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Weights = tuple[float, float, float]
GRID: list[Weights] = [(a / 10, b / 10, (10 - a - b) / 10) for a in range(11) for b in range(11 - a)]


@dataclass(slots=True)
class Parts:
    labels: I64
    members: F64
    branch: F64
    lexical: F64

    def mixed(self, w: Weights, rows: I64 | slice = slice(None)) -> F64:
        return np.asarray(
            w[0] * self.members[rows] + w[1] * self.branch[rows] + w[2] * self.lexical[rows], dtype=np.float64
        )


def macro_f1(y: I64, pred: I64) -> float:
    f1s = []
    for c in range(3):
        tp = int(np.sum((y == c) & (pred == c)))
        wrong = int(np.sum((y == c) != (pred == c)))
        if tp + wrong:
            f1s.append(2 * tp / (2 * tp + wrong))
    return float(np.mean(f1s)) if f1s else 0.0


def score(parts: dict[str, Parts], w: Weights, rows: dict[str, I64] | None = None) -> float:
    out = []
    for lang, p in parts.items():
        r: I64 | slice = slice(None) if rows is None else rows[lang]
        out.append(macro_f1(p.labels[r], p.mixed(w, r).argmax(axis=1)))
    return float(np.mean(out))


def choose(parts: dict[str, Parts], rows: dict[str, I64]) -> Weights:
    """The trainer's rule: best mean macro-F1, ties to more branch, then more members."""
    return max(GRID, key=lambda w: (round(score(parts, w, rows), 6), w[1], w[0]))


def compute_parts(limit: int | None) -> dict[str, Parts]:
    from murmur.enrich.langid import LanguageDetector
    from murmur.enrich.neural import neural_sentiment_model
    from murmur.enrich.neural.head import softmax
    from murmur.enrich.neural.samples import xlmt

    model = neural_sentiment_model()
    detector = LanguageDetector()
    parts: dict[str, Parts] = {}
    for lang, (texts, labels) in sorted(xlmt("val").items()):
        texts, labels = texts[:limit], labels[:limit]
        langs = [r.lang for r in detector.detect_many(texts)]
        vectors, logits = model.embedder.encode_with_sentiment(texts)
        parts[lang] = Parts(
            np.asarray(labels, dtype=np.int64),
            model.head.proba_e5(np.asarray(vectors, dtype=np.float32)),
            softmax(np.asarray(logits, dtype=np.float64)),
            np.asarray(model.lexical.predict_proba(texts, langs), dtype=np.float64),
        )
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="48 tweets a language, 3 repeats (smoke run)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit, repeats, boots = (48, 3, 50) if args.quick else (None, args.repeats, args.bootstrap)

    t0 = time.perf_counter()
    parts = compute_parts(limit)
    from murmur.enrich.neural.head import default_head

    mix = default_head().mix
    shipped = (mix.members, mix.branch, mix.lexical)
    n = {lang: len(p.labels) for lang, p in parts.items()}
    took = time.perf_counter() - t0
    print(f"XLM-T val: {sum(n.values())} tweets, {len(n)} languages; parts computed in {took:.1f} s")
    print(f"shipped mixture {shipped}: val mean macro-F1 {score(parts, shipped):.4f}")
    alone = {
        "members alone": (1.0, 0.0, 0.0),
        "branch alone": (0.0, 1.0, 0.0),
        "lexical alone": (0.0, 0.0, 1.0),
        "equal weights": (1 / 3, 1 / 3, 1 / 3),
    }
    for name, w in alone.items():
        print(f"  {name:<16} {score(parts, w):.4f}")

    rng = np.random.default_rng(args.seed)
    inside, outside, chosen = [], [], []
    for _ in range(repeats):
        a: dict[str, I64] = {}
        b: dict[str, I64] = {}
        for lang, k in n.items():
            order = rng.permutation(k)
            a[lang], b[lang] = order[: k // 2], order[k // 2 :]
        w = choose(parts, a)
        chosen.append(w)
        inside.append(score(parts, w, a))
        outside.append(score(parts, w, b))
    gap = np.mean(inside) - np.mean(outside)
    print(
        f"mixture chosen on a random half, scored on the other ({repeats} repeats): "
        f"chosen half {np.mean(inside):.4f}, other half {np.mean(outside):.4f} (sd {np.std(outside):.4f}); "
        f"selection optimism {gap:+.4f}"
    )
    print(f"  weights chosen: {len(set(chosen))} distinct; most often {max(set(chosen), key=chosen.count)}")

    boot = []
    for _ in range(boots):
        rows = {lang: rng.integers(0, k, size=k) for lang, k in n.items()}
        boot.append(score(parts, shipped, rows))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    print(f"shipped mixture, bootstrap over tweets ({boots} resamples): 95 % interval {lo:.4f}-{hi:.4f}")
    print(f"estimate for unseen tweets: {score(parts, shipped) - gap:.4f} (val minus the selection optimism)")


if __name__ == "__main__":
    main()
