"""Train the language-ID combiner (``murmur/assets/models/langid_combiner.npz``).

    python -m murmur.enrich.train_langid            # writes the artifact, prints what it measured

The combiner (``murmur.enrich.langid_combiner.Combiner``) scores every candidate language of a text that CLD2
is unsure of from what CLD2, langid.py and (second stage) lingua said about it, and picks the best
(a conditional logit: one linear score per candidate, softmax over a text's candidates, L2-penalized,
fitted with L-BFGS). It is trained on texts that are **not** the sentences it is measured on:

- lingua's ``word-pairs/`` and ``single-words/`` (the same 75 languages, other texts, 2-20 characters),
- "pseudo-sentences" of 3 to 7 of those word pairs joined (sentence-length texts from them),
- XLM-T's ``val`` tweets (ar en fr de it pt es; the ``train`` tweets are kept for measuring),
- AfriSenti's ``train`` tweets (up to 1,000 per language: am ha ig rw om pt sw ti ts ak yo), so the
  combiner also knows by name the African languages our users follow (``dev`` is kept for measuring).

Only the texts CLD2 is unsure of are used (as at run time). The first stage sees CLD2 + langid.py,
the second adds lingua's confidence values among the candidates; the threshold under which the
first stage asks lingua is chosen to keep lingua's share of texts about where the old vote had it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize  # type: ignore[import-untyped]  # scipy ships no type information

from murmur.enrich.evaluate import load_afrisenti, load_langid, load_xlmt
from murmur.enrich.langid import LanguageDetector
from murmur.enrich.langid_cld2 import Cld2Answer, cld2, clean
from murmur.enrich.langid_combiner import (
    FEATURES,
    LANG_FEATURES,
    MODEL_PATH,
    Combiner,
    LinearScorer,
    softmax_groups,
)
from murmur.testing import shared_data

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

XLMT_CODES = {
    "arabic": "ar",
    "english": "en",
    "french": "fr",
    "german": "de",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
}


AFRISENTI_CODES = {
    "amh": "am",
    "hau": "ha",
    "ibo": "ig",
    "kin": "rw",
    "orm": "om",
    "por": "pt",
    "swa": "sw",
    "tir": "ti",
    "tso": "ts",
    "twi": "ak",
    "yor": "yo",
}
"""AfriSenti's languages as the detector names them. Left out: Algerian and Moroccan Arabic (much
of it in Latin script, which would teach that Latin text is Arabic) and Nigerian Pidgin (English-based:
the detector rightly says ``en``)."""
AFRISENTI_PER_LANGUAGE = 1000


def training_texts(seed: int = 0) -> tuple[list[str], list[str]]:
    """(texts, language codes) of the training sets named in the module doc."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    lingua = shared_data("langid", "lingua")
    for kind in ("word-pairs", "single-words"):
        for item in load_langid(lingua / kind):
            texts += item.texts
            labels += [item.language] * len(item.texts)
    for item in load_langid(lingua / "word-pairs"):
        pairs = list(item.texts)
        for _ in range(2):
            rng.shuffle(pairs)
            at = 0
            while at < len(pairs):
                k = rng.randint(3, 7)
                texts.append(" ".join(pairs[at : at + k]))
                labels.append(item.language)
                at += k
    for item in load_xlmt(shared_data("sentiment", "xlmt"), "val"):
        code = XLMT_CODES.get(item.language)
        if code:
            texts += item.texts
            labels += [code] * len(item.texts)
    for item in load_afrisenti(shared_data("sentiment", "afrisenti"), "train"):
        code = AFRISENTI_CODES.get(item.language)
        if code:
            texts += item.texts[:AFRISENTI_PER_LANGUAGE]
            labels += [code] * len(item.texts[:AFRISENTI_PER_LANGUAGE])
    return texts, labels


@dataclass
class Examples:
    """Candidate rows of the routed texts: ``x`` (rows, FEATURES), ``cand`` (row → language),
    ``sizes`` (candidates per text), ``label`` per text."""

    x: F64
    cand: list[str]
    sizes: list[int]
    label: list[str]


def examples(det: LanguageDetector, texts: Sequence[str], labels: Sequence[str]) -> tuple[Examples, Examples]:
    """First-stage and second-stage examples of the texts CLD2 is unsure of."""
    cleaned = [clean(t[: det.max_chars]) for t in texts]
    routed: list[tuple[int, Cld2Answer]] = []
    for i, text in enumerate(cleaned):
        if any(ch.isalpha() for ch in text):
            first = cld2(text)
            if not det._sure(first.lang, first.reliable, first.score, text):
                routed.append((i, first))
    cands = det._candidates(cleaned, routed)
    lings = [det.lingua_values(cleaned[i], cands.cands(j)) for j, (i, _) in enumerate(routed)]
    names = [cands.table.codes[c] for c in cands.code.tolist()]
    sizes = cands.sizes.tolist()
    label = [labels[i] for i, _ in routed]
    return Examples(cands.x, names, sizes, label), Examples(cands.with_lingua(lings).x, names, sizes, label)


def fit(ex: Examples, langs: Sequence[str], l2: float = 0.1) -> LinearScorer:
    """Conditional logit over each text's candidates (texts whose language is not a candidate are
    left out: no choice among the candidates is right for them)."""
    index = {c: i for i, c in enumerate(langs)}
    starts = np.cumsum([0, *ex.sizes[:-1]])
    keep_rows: list[int] = []
    sizes: list[int] = []
    y: list[float] = []
    for s, n, lab in zip(starts.tolist(), ex.sizes, ex.label, strict=True):
        cands = ex.cand[s : s + n]
        if lab in cands:
            keep_rows += range(s, s + n)
            sizes.append(n)
            y += [1.0 if c == lab else 0.0 for c in cands]
    x = ex.x[keep_rows]
    li = np.asarray([index.get(ex.cand[r], -1) for r in keep_rows], dtype=np.int64)
    yv = np.asarray(y)
    known = li >= 0
    lk = li[known]
    xl = np.stack([np.ones(int(known.sum())), x[known, 0], x[known, 4], x[known, 7]], axis=1)
    group = np.repeat(np.arange(len(sizes)), sizes)
    gstarts = np.cumsum([0, *sizes[:-1]])
    g, v = len(FEATURES), len(langs)

    def loss(theta: F64) -> tuple[float, F64]:
        w, lw = theta[:g], theta[g:].reshape(v, len(LANG_FEATURES))
        s = x @ w
        s[known] += (lw[lk] * xl).sum(axis=1)
        m = np.maximum.reduceat(s, gstarts)
        e = np.exp(s - m[group])
        z = np.add.reduceat(e, gstarts)
        p = e / z[group]
        nll = -float(np.sum(yv * (s - m[group] - np.log(z[group]))))
        r = p - yv
        gw = x.T @ r
        glw = np.zeros_like(lw)
        for k in range(len(LANG_FEATURES)):
            glw[:, k] = np.bincount(lk, weights=r[known] * xl[:, k], minlength=v)
        grad = np.concatenate([gw, glw.ravel()]) + l2 * theta
        return nll + 0.5 * l2 * float(theta @ theta), grad

    theta0 = np.zeros(g + v * len(LANG_FEATURES))
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    theta = np.asarray(res.x, dtype=np.float64)
    return LinearScorer(theta[:g].copy(), theta[g:].reshape(v, len(LANG_FEATURES)).copy(), tuple(langs))


def predict(scorer: LinearScorer, ex: Examples) -> tuple[list[str], F64]:
    """The chosen language and its probability per text."""
    scores = scorer.score(ex.x, np.asarray(scorer.lang_index(ex.cand), dtype=np.int64))
    langs: list[str] = []
    probs: list[float] = []
    at = 0
    for n, p in zip(ex.sizes, softmax_groups(scores, ex.sizes), strict=True):
        k = int(p.argmax())
        langs.append(ex.cand[at + k])
        probs.append(float(p[k]))
        at += n
    return langs, np.asarray(probs)


def choose_threshold(
    first: tuple[list[str], F64], second: list[str], labels: Sequence[str], max_share: float
) -> float:
    """The threshold with the best accuracy on the training texts among those that send at most
    ``max_share`` of the routed texts to lingua."""
    p = first[1]
    best, best_acc = 0.0, -1.0
    for t in np.linspace(0.5, 1.0, 51).tolist():
        ask = p < t
        if ask.mean() > max_share:
            break
        ok = [
            (b if a else f) == lab
            for a, f, b, lab in zip(ask.tolist(), first[0], second, labels, strict=True)
        ]
        acc = float(np.mean(ok))
        if acc > best_acc:
            best, best_acc = t, acc
    return best


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--l2", type=float, default=0.1)
    ap.add_argument(
        "--lingua-share", type=float, default=0.3, help="at most this share of routed texts asks lingua"
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    texts, labels = training_texts()
    det = LanguageDetector(combiner=Combiner.placeholder())
    first_ex, second_ex = examples(det, texts, labels)
    langs = sorted(set(labels))
    first = fit(first_ex, langs, args.l2)
    second = fit(second_ex, langs, args.l2)
    p_first = predict(first, first_ex)
    p_second = predict(second, second_ex)[0]
    threshold = choose_threshold(p_first, p_second, first_ex.label, args.lingua_share)
    Combiner(first, second, threshold).save(args.out)

    def acc(pred: Sequence[str]) -> float:
        return float(np.mean([a == b for a, b in zip(pred, first_ex.label, strict=True)]))

    ask = p_first[1] < threshold
    both = [b if a else f for a, f, b in zip(ask.tolist(), p_first[0], p_second, strict=True)]
    print(
        f"{len(texts)} training texts, {len(first_ex.label)} routed; accuracy on them (training fit): "
        f"first stage {acc(p_first[0]):.3f}, second {acc(p_second):.3f}, combined {acc(both):.3f} "
        f"with threshold {threshold:.2f} ({ask.mean():.1%} ask lingua); "
        f"wrote {args.out} in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
