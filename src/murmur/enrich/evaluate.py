"""Measured accuracy of the enrichment models on the real labelled sets (``murmur eval``).

* ``eval_langid(folder)``: a folder laid out like lingua's ``sentences/`` (``<iso639-1>.txt``, one
  text per line): accuracy per language of ``murmur.lang.cld2lingua@2`` and of pycld2 alone.
* ``eval_sentiment(folder, fmt, split, tier)``: XLM-T (``<language>/<split>_text.txt`` +
  ``_labels.txt``) or AfriSenti (``<lang>/<split>.tsv``): macro-F1 and accuracy per language of the
  chosen tier, of VADER (the named peer) and of the majority-class baseline.

Both return plain dataclasses (``Report``) that the CLI prints as a table or JSON. Loaders are
public: the training script reads the same files the same way.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from murmur.errors import ModelError

log = logging.getLogger(__name__)

SentimentFormat = Literal["xlmt", "afrisenti"]
Tier = Literal["firehose", "neural"]
Progress = Callable[[int], None]
"""Called with the number of items just finished (for a progress bar)."""

XLMT_LANGS: dict[str, str] = {
    "arabic": "ar",
    "english": "en",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
}
AFRISENTI_LABELS: dict[str, int] = {"negative": 0, "neutral": 1, "positive": 2}


@dataclass(frozen=True, slots=True)
class Labelled:
    language: str
    texts: list[str]
    labels: list[int]


def _shuffled(texts: list[str], labels: list[int], seed: int) -> tuple[list[str], list[int]]:
    # XLM-T files are ordered by class (0,1,2,0,1,2,...): shuffle so no consumer sees that order.
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


def load_xlmt(folder: Path, split: str, *, seed: int = 0) -> list[Labelled]:
    """Every ``<language>/<split>_text.txt`` (+ labels) under ``folder``, shuffled with ``seed``;
    an empty split is skipped like a missing one."""
    out: list[Labelled] = []
    for lang_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        text_file, label_file = lang_dir / f"{split}_text.txt", lang_dir / f"{split}_labels.txt"
        if not text_file.exists() or not label_file.exists():
            continue
        labels = _xlmt_labels(label_file)
        lines = _text(text_file).split("\n")
        if lines[-1] == "":  # the file's final newline ends the last text
            lines.pop()
        if len(lines) != len(labels):
            msg = f"{text_file}: {len(lines)} texts but {len(labels)} labels in {label_file}"
            raise ValueError(msg)
        if not lines:  # an empty split: no row (a row of zeros would pull the mean down)
            log.warning("%s: no texts, skipped", text_file)
            continue
        texts, labs = _shuffled([ln.strip() for ln in lines], labels, seed)
        out.append(Labelled(lang_dir.name, texts, labs))
    if not out:
        msg = (
            f"no XLM-T split {split!r} under {folder} (expected <language>/{split}_text.txt and _labels.txt)"
        )
        raise FileNotFoundError(msg)
    return out


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        msg = f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ValueError(msg) from None


def _xlmt_labels(path: Path) -> list[int]:
    labels: list[int] = []
    for n, line in enumerate(_text(path).split("\n"), 1):
        if not line.strip():
            continue
        if line.strip() not in ("0", "1", "2"):
            msg = f"{path}:{n}: label {line.strip()!r} is not 0, 1 or 2 (negative, neutral, positive)"
            raise ValueError(msg)
        labels.append(int(line))
    return labels


def load_afrisenti(folder: Path, split: str) -> list[Labelled]:
    """Every ``<lang>/<split>.tsv`` under ``folder`` (columns ``tweet``, ``label``; orm has an ID); an
    empty file or one with a header only is skipped like a missing one."""
    out: list[Labelled] = []
    for lang_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        path = lang_dir / f"{split}.tsv"
        if not path.exists():
            continue
        content = _text(path)
        if not content.strip():  # upstream's orm and tir train.tsv are empty
            log.warning("%s: empty, skipped", path)
            continue
        texts: list[str] = []
        labels: list[int] = []
        with io.StringIO(content, newline="") as f:
            rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(rows, [])
            if "tweet" not in header or "label" not in header:
                msg = f"{path}:1: the header {header} has no 'tweet' and 'label' columns"
                raise ValueError(msg)
            ti, li = header.index("tweet"), header.index("label")
            for n, row in enumerate(rows, 2):
                if len(row) <= max(ti, li) or row[li].strip() not in AFRISENTI_LABELS:
                    got = row[li].strip() if len(row) > li else "(none)"
                    msg = f"{path}:{n}: label {got!r} is not one of {', '.join(AFRISENTI_LABELS)}"
                    raise ValueError(msg)
                texts.append(row[ti])
                labels.append(AFRISENTI_LABELS[row[li].strip()])
        if not texts:
            log.warning("%s: no rows, skipped", path)
            continue
        out.append(Labelled(lang_dir.name, texts, labels))
    if not out:
        msg = f"no AfriSenti split {split!r} under {folder} (expected <lang>/{split}.tsv)"
        raise FileNotFoundError(msg)
    return out


_LANGUAGE_FILE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")
"""A language-ID file's stem: an ISO 639 code, perhaps with a script or region (``zh-Hant``)."""


def load_langid(folder: Path, *, per_language: int | None = None) -> list[Labelled]:
    """``<code>.txt`` files, one text per line (lines end at ``\n`` only); ``per_language`` keeps the
    first N of each; an empty file is skipped.
    Labels are indices into the sorted language codes (``Labelled.language`` holds the code)."""
    out: list[Labelled] = []
    files = sorted(folder.glob("*.txt"))
    if not files:
        msg = f"no <language>.txt files in {folder}"
        raise FileNotFoundError(msg)
    if misnamed := [p.name for p in files if not _LANGUAGE_FILE.fullmatch(p.stem)]:
        msg = (
            f"{folder}: {', '.join(misnamed[:5])} not named by a language code (de.txt, pcm.txt, "
            "zh-Hant.txt); is this a folder laid out like lingua's sentences/?"
        )
        raise ValueError(msg)
    for i, path in enumerate(files):
        # "\n" only: ``splitlines`` also splits at U+0085 and U+2028, which sentences contain (fi, nb)
        lines = [ln.strip() for ln in _text(path).split("\n") if ln.strip()]
        if not lines:  # no row: a row of zeros would pull the per-language mean down
            log.warning("%s: no texts, skipped", path)
            continue
        out.append(Labelled(path.stem, lines[:per_language], [i] * len(lines[:per_language])))
    if not out:
        msg = f"the <language>.txt files in {folder} hold no texts"
        raise ValueError(msg)
    return out


# --- metrics -------------------------------------------------------------------------------------


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int = 3) -> float:
    """Mean F1 over the classes present in ``y_true`` or ``y_pred`` (sklearn's ``average="macro"``)."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    f1s: list[float] = []
    for c in range(n_classes):
        tp = int(np.sum((t == c) & (p == c)))
        fp = int(np.sum((t != c) & (p == c)))
        fn = int(np.sum((t == c) & (p != c)))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def accuracy(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    return float(np.mean([a == b for a, b in zip(y_true, y_pred, strict=True)])) if y_true else 0.0


@dataclass(slots=True)
class Row:
    language: str
    n: int
    ours: float
    peer: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Report:
    """One score per language for us and for the named peer, and their means over languages."""

    task: str
    metric: str
    ours_name: str
    peer_name: str
    rows: list[Row]
    extra_names: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_ours(self) -> float:
        return statistics.fmean(r.ours for r in self.rows) if self.rows else 0.0

    @property
    def mean_peer(self) -> float:
        return statistics.fmean(r.peer for r in self.rows) if self.rows else 0.0

    def mean_extra(self, name: str) -> float:
        vals = [r.extra[name] for r in self.rows if name in r.extra]
        return statistics.fmean(vals) if vals else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"] = {"ours": self.mean_ours, "peer": self.mean_peer} | {
            n: self.mean_extra(n) for n in self.extra_names
        }
        return d


# --- language identification ---------------------------------------------------------------------


def eval_langid(folder: Path, *, per_language: int | None = None, progress: Progress | None = None) -> Report:
    """Accuracy per language of our detector and of pycld2 alone (bestEffort, cleaned text)."""
    from murmur.enrich.langid import LanguageDetector
    from murmur.enrich.langid_cld2 import cld2_only

    data = load_langid(folder, per_language=per_language)
    detector = LanguageDetector()
    rows: list[Row] = []
    for item in data:
        ours = [r.lang for r in detector.detect_many(item.texts)]
        peer = [cld2_only(t) for t in item.texts]
        rows.append(
            Row(
                item.language,
                len(item.texts),
                accuracy([item.language] * len(ours), ours),
                accuracy([item.language] * len(peer), peer),
            )
        )
        if progress:
            progress(len(item.texts))
    info = {"routed_fraction": detector.stats.routed_fraction, "texts": detector.stats.texts}
    return Report("langid", "accuracy", "murmur.lang.cld2lingua@2", "pycld2", rows, info=info)


# --- sentiment -----------------------------------------------------------------------------------


class ProbaModel(Protocol):
    def predict_proba(
        self,
        texts: Sequence[str],
        langs: Sequence[str | None] | None = None,
        confs: Sequence[float | None] | None = None,
    ) -> npt.NDArray[np.float64]: ...


def firehose_predict(texts: Sequence[str]) -> list[int]:
    """The firehose tier as the pipeline runs it: detected language routes the lexical heads."""
    from murmur.enrich.langid import LanguageDetector
    from murmur.enrich.lexical import default_model

    langs = [r.lang for r in LanguageDetector().detect_many(texts)]
    proba = default_model().predict_proba(texts, langs)
    return [int(k) for k in proba.argmax(axis=1)]


def neural_predict(texts: Sequence[str]) -> list[int]:
    try:
        from murmur.enrich import neural
    except ImportError as e:  # pragma: no cover - the neural package ships with murmur
        msg = f"the neural tier cannot be imported ({e}); use --tier firehose"
        raise ModelError(msg) from e
    factory = getattr(neural, "neural_sentiment_model", None)
    if factory is None:
        msg = (
            "murmur.enrich.neural has no neural_sentiment_model() yet: the neural tier's sentiment "
            "model is not wired in; use --tier firehose"
        )
        raise ModelError(msg)
    from murmur.enrich.langid import LanguageDetector

    model: ProbaModel = factory()
    # as the pipeline runs it: the detected language (and its confidence) routes the lexical part
    found = LanguageDetector().detect_many(texts)
    proba = model.predict_proba(list(texts), [r.lang for r in found], [r.conf for r in found])
    return [int(k) for k in np.asarray(proba).argmax(axis=1)]


def vader_predict(texts: Sequence[str]) -> list[int]:
    """VADER's compound score with the usual ±0.05 thresholds."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    out: list[int] = []
    for t in texts:
        c = sia.polarity_scores(t)["compound"]
        out.append(2 if c >= 0.05 else 0 if c <= -0.05 else 1)
    return out


_XLMT_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def eval_sentiment(
    folder: Path,
    *,
    fmt: SentimentFormat,
    split: str,
    tier: Tier = "firehose",
    progress: Progress | None = None,
) -> Report:
    """Macro-F1 per language of the tier, VADER and the majority class of the split."""
    data = load_xlmt(folder, split) if fmt == "xlmt" else load_afrisenti(folder, split)
    predict = firehose_predict if tier == "firehose" else neural_predict
    rows: list[Row] = []
    for item in data:
        texts = [_XLMT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), t) for t in item.texts]
        ours = predict(texts)
        peer = vader_predict(texts)
        majority = int(np.bincount(item.labels, minlength=3).argmax())
        base = [majority] * len(item.labels)
        rows.append(
            Row(
                item.language,
                len(texts),
                macro_f1(item.labels, ours),
                macro_f1(item.labels, peer),
                {
                    "majority_f1": macro_f1(item.labels, base),
                    "ours_acc": accuracy(item.labels, ours),
                    "peer_acc": accuracy(item.labels, peer),
                    "majority_acc": accuracy(item.labels, base),
                },
            )
        )
        if progress:
            progress(len(texts))
    names = ["majority_f1", "ours_acc", "peer_acc", "majority_acc"]
    ours_name = "murmur.sentiment.lexical@1" if tier == "firehose" else "murmur.sentiment.e5head@1"
    return Report(f"sentiment/{fmt}/{split}", "macro_f1", ours_name, "vader", rows, names, {"tier": tier})


def count_items(folder: Path, task: str, *, fmt: SentimentFormat = "xlmt", split: str = "val") -> int:
    """How many texts an evaluation will read (for a progress bar's total)."""
    if task == "langid":
        return sum(len(d.texts) for d in load_langid(folder))
    data = load_xlmt(folder, split) if fmt == "xlmt" else load_afrisenti(folder, split)
    return sum(len(d.texts) for d in data)
