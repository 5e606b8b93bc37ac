"""How does the neural tier's sentiment mixture fare on a language its lexical part never saw?

    python bench/sentiment_unseen.py [--quick]

The shipped mixture is ``0.1 · members + 0.3 · branch + 0.6 · lexical`` for every language. The
lexical model was trained on the 8 XLM-T languages and 12 AfriSenti ones; our users follow many
more (Russian, Turkish, Dutch, Japanese, ...), for which no labelled tweets are at hand. This
simulates one: leave one XLM-T language out of the training of the lexical model's ``xlmt`` head
and of a logistic-regression member on the e5 vectors, and score that language's val tweets with

* ``lex in`` / ``lex out``: the lexical model (``0.8 · xlmt + 0.2 · afrisenti``, as routed for an
  unknown language) trained with / without the language;
* ``mem out``: the member alone, trained without it;
* ``mem+lex out``: the two at the shipped proportion (0.1 : 0.6);
* ``at 0.6`` / ``shipped`` / ``e5 only``: the mixture's weights (0.1 : 0.3 : 0.6) with the
  out-of-language lexical model and member; the mixture as shipped for a language the lexical model
  was not trained on (``head.UNSEEN_LEXICAL``: the lexical part 0.3, the e5 parts the rest); and the
  member and branch alone (0.25 : 0.75). The branch was fine-tuned on every language, so these three
  columns flatter the e5 side.

The macro-F1 of each is printed per language and as the mean (with and without Hindi, whose labels
look unreliable), then the mean of the mixture by the lexical part's weight (0 to 0.6), from which
``UNSEEN_LEXICAL`` was chosen. The test splits are not read.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from murmur.enrich.evaluate import Labelled, load_xlmt, macro_f1
from murmur.enrich.lexical import LexicalSentimentModel, default_model
from murmur.enrich.neural.components import NeuralSentimentModel, softmax
from murmur.enrich.train_lexical import train_head
from murmur.testing import shared_data

F64 = npt.NDArray[np.float64]
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6)
COLUMNS = ("lex in", "lex out", "mem out", "mem+lex out", "at 0.6", "shipped", "e5 only")


def f1(labels: list[int], p: F64) -> float:
    return float(macro_f1(labels, p.argmax(axis=1).tolist()))


def cut(sets: list[Labelled], n: int | None) -> list[Labelled]:
    return [Labelled(s.language, s.texts[:n], s.labels[:n]) for s in sets] if n else sets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 150 train, 60 val tweets a language, 2 languages"
    )
    args = p.parse_args()
    data = shared_data("sentiment", "xlmt")
    train = cut(load_xlmt(data, "train", seed=0), 150 if args.quick else None)
    val = cut(load_xlmt(data, "val"), 60 if args.quick else None)
    held_out = ["english", "french"] if args.quick else [s.language for s in val]
    model = NeuralSentimentModel()
    t0 = time.perf_counter()
    train_vec = model.embedder.encode([t for s in train for t in s.texts])
    print(f"encoded {sum(len(s.texts) for s in train):,} train tweets in {time.perf_counter() - t0:.0f} s")
    lang_of = np.concatenate([[s.language] * len(s.texts) for s in train])
    y_train = np.concatenate([np.asarray(s.labels, dtype=np.int64) for s in train])
    texts = [t for s in train for t in s.texts]
    shipped = default_model()
    mix = model.head.mix
    rows: dict[str, dict[str, float]] = {}
    sweep: dict[float, list[float]] = {w: [] for w in WEIGHTS}
    for s in val:
        if s.language not in held_out:
            continue
        keep = lang_of != s.language
        kept = [t for t, k in zip(texts, keep, strict=True) if k]
        heads = {"xlmt": train_head(kept, y_train[keep].tolist(), shipped.config, 0.2)}
        heads["afrisenti"] = shipped.heads["afrisenti"]
        lexical = LexicalSentimentModel(shipped.config, heads, routes={})
        member = LogisticRegression(C=1.0, max_iter=2000).fit(train_vec[keep], y_train[keep])
        vectors, logits = model.embedder.encode_with_sentiment(s.texts)
        p_lex = np.asarray(lexical.predict_proba(s.texts), dtype=np.float64)
        p_mem = np.asarray(member.predict_proba(vectors), dtype=np.float64)
        p_branch = softmax(logits)
        e5 = mix.members + mix.branch
        rows[s.language] = dict(
            zip(
                COLUMNS,
                (
                    f1(s.labels, np.asarray(shipped.predict_proba(s.texts), dtype=np.float64)),
                    f1(s.labels, p_lex),
                    f1(s.labels, p_mem),
                    f1(s.labels, mix.members * p_mem + mix.lexical * p_lex),
                    f1(s.labels, mix.members * p_mem + mix.branch * p_branch + mix.lexical * p_lex),
                    f1(s.labels, model.head.combine(p_mem, p_branch, p_lex, np.ones(len(p_lex), dtype=bool))),
                    f1(s.labels, (mix.members * p_mem + mix.branch * p_branch) / e5),
                ),
                strict=True,
            )
        )
        for w in WEIGHTS:  # the lexical part at w, the e5 parts (member and branch) the rest
            sweep[w].append(
                f1(s.labels, (1 - w) * (mix.members * p_mem + mix.branch * p_branch) / e5 + w * p_lex)
            )
        cells = "".join(f"  {c} {v:.3f}" for c, v in rows[s.language].items())
        print(f"{s.language:<11}{cells}", flush=True)
    for name, langs in (("mean", list(rows)), ("mean without hindi", [lg for lg in rows if lg != "hindi"])):
        if langs:
            means = {c: float(np.mean([rows[lg][c] for lg in langs])) for c in COLUMNS}
            print(f"{name}: " + ", ".join(f"{c} {v:.4f}" for c, v in means.items()))
    if rows:
        cells = ", ".join(f"{w:g}: {np.mean(f):.4f}" for w, f in sweep.items())
        print(f"mean by the lexical part's weight in a language it never saw: {cells}")
    print(f"left out one at a time: {', '.join(rows)}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
