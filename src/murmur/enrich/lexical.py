"""The firehose tier's sentiment model: hashed character/word n-grams and linear heads.

A post is normalized (lower case, links → ``http``, mentions → ``@user``, long letter runs cut to
three), cut into character 1–5-grams and word 1–2-grams, hashed into fixed buckets
(``murmur.enrich.hashing``: the whole batch at once, in numpy), weighted TF-IDF with one L2 norm
per block, and scored by a linear softmax head (multinomial logistic regression).

There are two heads, trained by ``python -m murmur.enrich.train_lexical``:

* ``xlmt``      trained on the XLM-T train splits (8 languages); used for every language by default,
* ``afrisenti`` trained on the AfriSenti train splits; used for posts whose detected language is one
                of the AfriSenti languages that language identification can name (``ROUTES``).

The artifact is one ``.npz`` of plain arrays (no pickle) under ``murmur/assets/models/``; its
measured scores are in the ``MODEL_CARD.md`` beside it. Classes are always (negative, neutral,
positive).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from murmur.enrich import hashing
from murmur.errors import ModelError
from murmur.types import Post, SentimentLabel

MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
DEFAULT_MODEL = MODEL_DIR / "sentiment_lexical.npz"
LABELS: tuple[SentimentLabel, SentimentLabel, SentimentLabel] = ("negative", "neutral", "positive")

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_REPEAT = re.compile(r"(.)\1{3,}")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The text as the model sees it (see module doc), padded with one space on each side."""
    if "\\u" in text:  # some corpora (XLM-T) keep JSON escapes such as \u2019 literally
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = _URL.sub(" http ", text)
    text = _MENTION.sub("@user", text)
    text = _REPEAT.sub(r"\1\1\1", text.lower())
    return " " + _SPACE.sub(" ", text).strip() + " "


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    char_min: int = 1
    char_max: int = 5
    char_bits: int = 18
    word_min: int = 1
    word_max: int = 2
    word_bits: int = 17
    char_within_words: bool = True

    @property
    def n_features(self) -> int:
        return (1 << self.char_bits) + (1 << self.word_bits)

    @property
    def split(self) -> int:
        """Columns below this are character n-grams, the rest word n-grams."""
        return 1 << self.char_bits

    def to_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__slots__})

    @classmethod
    def from_json(cls, text: str) -> FeatureConfig:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Occurrences:
    """Every n-gram occurrence of a batch: text ``doc[k]`` has feature column ``col[k]``."""

    doc: I64
    col: I64
    n_docs: int


def occurrences(texts: Sequence[str], cfg: FeatureConfig) -> Occurrences:
    """The hashed n-grams of ``texts`` (used as given: call ``normalize`` first)."""
    batch = hashing.layout(texts)
    docs: list[I64] = []
    cols: list[I64] = []
    sizes = range(cfg.char_min, cfg.char_max + 1)
    for n, (doc, h) in zip(sizes, hashing.char_ngrams(batch, sizes, within_words=cfg.char_within_words), strict=True):
        docs.append(doc)
        cols.append(hashing.bucket(h, n, cfg.char_bits))
    words = hashing.word_spans(batch)
    for n in range(cfg.word_min, cfg.word_max + 1):
        doc, h = hashing.word_ngrams(batch, words, n)
        docs.append(doc)
        cols.append(hashing.bucket(h, 100 + n, cfg.word_bits) + cfg.split)
    empty = np.zeros(0, dtype=np.int64)
    return Occurrences(
        np.concatenate(docs) if docs else empty, np.concatenate(cols) if cols else empty, len(texts)
    )


def _block_norms(occ: Occurrences, idf: F32, cfg: FeatureConfig) -> npt.NDArray[np.float64]:
    """Per occurrence, the norm of its text's block: sqrt(Σ idf² over that block's occurrences)."""
    w2 = idf[occ.col].astype(np.float64) ** 2
    is_word = occ.col >= cfg.split
    key = occ.doc * 2 + is_word
    norms = np.sqrt(np.bincount(key, weights=w2, minlength=2 * occ.n_docs))
    norms[norms == 0] = 1.0
    out: npt.NDArray[np.float64] = norms[key]
    return out


def design_matrix(occ: Occurrences, idf: F32, cfg: FeatureConfig) -> sp.csr_matrix:
    """The weighted features as a sparse matrix (for training): each occurrence adds
    ``idf / block norm`` to its column (see ``LinearHead.proba``, which computes the same product)."""
    data = (idf[occ.col] / _block_norms(occ, idf, cfg)).astype(np.float32)
    m = sp.csr_matrix((data, (occ.doc, occ.col)), shape=(occ.n_docs, cfg.n_features), dtype=np.float32)
    m.sum_duplicates()
    return m


def fit_idf(occ: Occurrences, cfg: FeatureConfig) -> F32:
    """Smoothed inverse document frequency, as sklearn's ``TfidfTransformer(smooth_idf=True)``."""
    pairs = np.unique(occ.doc * cfg.n_features + occ.col)
    df = np.bincount(pairs % cfg.n_features, minlength=cfg.n_features)
    return (np.log((1 + occ.n_docs) / (1 + df)) + 1.0).astype(np.float32)


@dataclass(frozen=True, slots=True)
class LinearHead:
    """``softmax(x @ coef + intercept)`` over (negative, neutral, positive)."""

    idf: F32
    coef: F32  # (n_features, 3)
    intercept: F32  # (3,)

    def proba(self, occ: Occurrences, cfg: FeatureConfig) -> npt.NDArray[np.float64]:
        """Same as ``softmax(design_matrix(occ) @ coef + intercept)``, without building the matrix:
        a sum over occurrences of ``idf · coef / block norm``, per text."""
        scale = self.idf[occ.col] / _block_norms(occ, self.idf, cfg)
        contrib = self.coef[occ.col] * scale[:, None]
        z = np.empty((occ.n_docs, 3), dtype=np.float64)
        for k in range(3):
            z[:, k] = np.bincount(occ.doc, weights=contrib[:, k], minlength=occ.n_docs)
        z += self.intercept
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z


ROUTES: dict[str, str] = {
    # detected language → head. The AfriSenti languages language identification can name.
    "ha": "afrisenti",
    "ig": "afrisenti",
    "yo": "afrisenti",
    "rw": "afrisenti",
    "om": "afrisenti",
    "sw": "afrisenti",
    "ts": "afrisenti",
    "am": "afrisenti",
    "ti": "afrisenti",
    "ak": "afrisenti",
}


@dataclass(slots=True)
class LexicalSentimentModel:
    """Hashed n-gram features + one linear head per training corpus, routed by language."""

    config: FeatureConfig
    heads: dict[str, LinearHead]
    default_head: str = "xlmt"
    routes: dict[str, str] = field(default_factory=lambda: dict(ROUTES))
    meta: dict[str, Any] = field(default_factory=dict)

    def head_for(self, lang: str | None) -> str:
        name = self.routes.get(lang or "", self.default_head)
        return name if name in self.heads else self.default_head

    def predict_proba(
        self, texts: Sequence[str], langs: Sequence[str | None] | None = None
    ) -> npt.NDArray[np.float64]:
        """Probabilities (n, 3) of (negative, neutral, positive). ``langs`` (detected language per
        text) routes texts to the AfriSenti head; without it every text uses the default head."""
        out = np.zeros((len(texts), 3), dtype=np.float64)
        if not texts:
            return out
        heads = [self.default_head] * len(texts) if langs is None else [self.head_for(lg) for lg in langs]
        for name in sorted(set(heads)):
            idx = [i for i, h in enumerate(heads) if h == name]
            occ = occurrences([normalize(texts[i]) for i in idx], self.config)
            out[idx] = self.heads[name].proba(occ, self.config)
        return out

    def save(self, path: Path) -> None:
        arrays: dict[str, npt.NDArray[Any]] = {
            "config": np.array(self.config.to_json()),
            "meta": np.array(json.dumps({"default_head": self.default_head, "routes": self.routes, **self.meta})),
        }
        for name, head in self.heads.items():
            arrays[f"{name}.idf"] = head.idf.astype(np.float16)
            arrays[f"{name}.coef"] = head.coef.astype(np.float16)
            arrays[f"{name}.intercept"] = head.intercept.astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> LexicalSentimentModel:
        if not path.exists():
            msg = (
                f"lexical sentiment model not found at {path}; "
                "train it with `python -m murmur.enrich.train_lexical` (needs ../shared/data)"
            )
            raise ModelError(msg)
        with np.load(path, allow_pickle=False) as z:
            cfg = FeatureConfig.from_json(str(z["config"]))
            meta: dict[str, Any] = json.loads(str(z["meta"]))
            names = sorted({k.split(".")[0] for k in z.files if k.endswith(".coef")})
            heads = {
                n: LinearHead(
                    idf=z[f"{n}.idf"].astype(np.float32),
                    coef=z[f"{n}.coef"].astype(np.float32),
                    intercept=z[f"{n}.intercept"].astype(np.float32),
                )
                for n in names
            }
        default = str(meta.pop("default_head", "xlmt"))
        routes = {str(k): str(v) for k, v in dict(meta.pop("routes", ROUTES)).items()}
        return cls(cfg, heads, default, routes, meta)


@cache
def default_model() -> LexicalSentimentModel:
    """The shipped model, loaded once per process."""
    return LexicalSentimentModel.load(DEFAULT_MODEL)


class LexicalSentiment:
    """``murmur.sentiment.lexical@1``: sentiment label and score from the shipped lexical model."""

    name = "murmur.sentiment.lexical@1"
    requires: frozenset[str] = frozenset({"lang"})
    assigns: frozenset[str] = frozenset({"sentiment", "sentiment_score", "sentiment_model"})

    def __init__(self, model: LexicalSentimentModel | None = None) -> None:
        self._model = model

    @property
    def model(self) -> LexicalSentimentModel:
        if self._model is None:
            self._model = default_model()
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        return {"model": None}  # the model is reloaded from the shipped artifact, not pickled

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._model = None

    def process(self, posts: Sequence[Post]) -> None:
        if not posts:
            return
        proba = self.model.predict_proba([p.text for p in posts], [p.lang for p in posts])
        best = proba.argmax(axis=1)
        score = proba[:, 2] - proba[:, 0]
        for post, k, s in zip(posts, best.tolist(), score.tolist(), strict=True):
            post.sentiment = LABELS[k]
            post.sentiment_score = round(float(s), 4)
            post.sentiment_model = self.name
