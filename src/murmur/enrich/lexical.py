"""The firehose tier's sentiment model: hashed character/word n-grams and linear heads.

A post is normalized (lower case, links → ``http``, mentions → ``@user``, long letter runs cut to
three), cut into character 1–5-grams and word 1–2-grams, hashed into fixed buckets
(``murmur.enrich.hashing``: the whole batch at once, in numpy), weighted TF-IDF with one L2 norm
per block, and scored by a linear softmax head (multinomial logistic regression).

There are two heads, trained by ``python -m murmur.enrich.train_lexical``:

* ``xlmt``      trained on the XLM-T train splits (8 languages),
* ``afrisenti`` trained on the AfriSenti train splits (12 languages).

A post whose detected language is an AfriSenti language that language identification can name
uses the AfriSenti head (``ROUTES``); every other post gets ``0.8 · xlmt + 0.2 · afrisenti``
(``DEFAULT_MIXTURE``), which keeps the XLM-T score and lifts the AfriSenti languages that are
detected as English, Arabic or Portuguese (Nigerian Pidgin, Algerian/Moroccan Arabic, Mozambican
Portuguese).

The artifact is one ``.npz`` of plain arrays (no pickle) under ``murmur/assets/models/``; its
measured scores are in the ``MODEL_CARD.md`` beside it. Classes are always (negative, neutral,
positive).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from murmur.cache import file_digest, mapped_arrays
from murmur.enrich import hashing
from murmur.errors import ModelError
from murmur.text import may_have_link
from murmur.types import Post, SentimentLabel

MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
DEFAULT_MODEL = MODEL_DIR / "sentiment_lexical.npz"
LABELS: tuple[SentimentLabel, SentimentLabel, SentimentLabel] = ("negative", "neutral", "positive")

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_LINK_OR_MENTION = re.compile(r"((?:https?://|www\.)\S+)|@\w+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_REPEAT = re.compile(r"(.)\1\1\1+")


def _link_or_mention(m: re.Match[str]) -> str:
    return " http " if m.group(1) else "@user"


def normalize(text: str) -> str:
    """The text as the model sees it (see module doc), padded with one space on each side."""
    return _spaced(_REPEAT.sub(r"\1\1\1", _marked(text)))


def normalize_all(texts: Sequence[str]) -> list[str]:
    """``[normalize(t) for t in texts]``, the same strings, with the long-run regex (~2.8 µs a text:
    it tries a back-reference at every character) run only on the texts that have a run of four or
    more of one character (~5 % of posts), found for the whole batch at once."""
    marked = [_marked(t) for t in texts]
    runs = _has_runs(marked)
    return [_spaced(_REPEAT.sub(r"\1\1\1", m) if r else m) for m, r in zip(marked, runs, strict=True)]


def _marked(text: str) -> str:
    """Escapes decoded, lower case, links → ``http``, mentions → ``@user``."""
    if "\\u" in text:  # some corpora (XLM-T) keep JSON escapes such as \u2019 literally
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = text.lower()
    if may_have_link(text):
        text = _LINK_OR_MENTION.sub(_link_or_mention, text)
    elif "@" in text:  # mentions only (most texts with markup): one pass without the links' callback
        text = _MENTION.sub("@user", text)
    return text


def _spaced(text: str) -> str:
    # A printable text has no whitespace but the ASCII space (every other whitespace character is a
    # control or separator: checked over all code points), so without a double, leading or trailing
    # space it is its own split and join (~9 posts in 10; ~2.4 → 1.8 µs a post).
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return " " + text + " "
    return " " + " ".join(text.split()) + " "


def _has_runs(texts: Sequence[str]) -> list[bool]:
    """Per text, whether ``_REPEAT`` finds something in it: four or more of one character in a row,
    other than line breaks (``.`` does not match one)."""
    # joined by line breaks, which cannot extend a run nor be one
    cps = np.frombuffer("\n".join(texts).encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    same = cps[1:] == cps[:-1]
    at = np.flatnonzero(same[:-2] & same[1:-1] & same[2:] & (cps[:-3] != ord("\n")))
    out = [False] * len(texts)
    if len(at):
        ends = np.cumsum(np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts)))
        for d in np.unique(np.searchsorted(ends, at, side="right")).tolist():
            out[d] = True
    return out


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    char_min: int = 1
    char_max: int = 5
    char_bits: int = 20
    word_min: int = 1
    word_max: int = 2
    word_bits: int = 17
    char_within_words: bool = True
    binary: bool = True
    """Count each n-gram once per text (binary term frequency)."""

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
    shift = max(cfg.n_features - 1, 1).bit_length()
    if cfg.binary and len(texts) << shift <= 1 << 32:
        return _binary_occurrences(texts, cfg, shift)
    batch = hashing.layout(texts)
    docs: list[I64] = []
    cols: list[I64] = []
    sizes = range(cfg.char_min, cfg.char_max + 1)
    for n, (doc, h) in zip(
        sizes, hashing.char_ngrams(batch, sizes, within_words=cfg.char_within_words), strict=True
    ):
        docs.append(doc)
        cols.append(hashing.bucket(h, n, cfg.char_bits))
    words = hashing.word_spans(batch)
    for n in range(cfg.word_min, cfg.word_max + 1):
        doc, h = hashing.word_ngrams(batch, words, n)
        docs.append(doc)
        cols.append(hashing.bucket(h, 100 + n, cfg.word_bits) + cfg.split)
    empty = np.zeros(0, dtype=np.int64)
    doc = np.concatenate(docs) if docs else empty
    col = np.concatenate(cols) if cols else empty
    if cfg.binary:  # keep each (text, column) pair once; sort-based (numpy's hash unique is slower)
        key = doc << shift | col
        key.sort()
        key = key[run_starts(key)]
        doc, col = key >> shift, key & ((1 << shift) - 1)
    return Occurrences(doc, col, len(texts))


def _binary_occurrences(texts: Sequence[str], cfg: FeatureConfig, shift: int) -> Occurrences:
    """``occurrences`` with binary features for a batch whose (text, column) pairs fit in 32 bits:
    each n-gram goes straight to its packed key ``text << shift | column`` (uint32), written into one
    array (no per-size int64 text and column arrays, no concatenation), then sorted and deduplicated
    (a 32-bit sort is twice as fast as a 64-bit one). The same occurrences, in the same order."""
    batch = hashing.layout(texts)
    total = len(batch.cps)
    sizes = range(cfg.char_min, cfg.char_max + 1)
    masks = hashing.window_masks(batch, sizes, within_words=cfg.char_within_words)
    words = hashing.word_spans(batch)
    word_grams = [hashing.word_ngrams(batch, words, n) for n in range(cfg.word_min, cfg.word_max + 1)]
    kept = [int(np.count_nonzero(m)) for m in masks]
    key = np.empty(sum(kept) + sum(len(d) for d, _ in word_grams), dtype=np.uint32)
    doc_bits = (batch.doc << shift).astype(np.uint32)
    window_keys = np.empty(total, dtype=np.uint32)
    at = 0
    for n, ok, k in zip(sizes, masks, kept, strict=True):
        if k:
            # every window's key, then one uint32 selection: cheaper than selecting the 64-bit
            # hashes and the text bits apart and keying only the kept windows (~6.1 → 3.8 µs a post)
            length = total + 1 - n
            keys = window_keys[:length]
            hashing.bucket_into(hashing.window_hashes(batch, n), n, cfg.char_bits, doc_bits[:length], keys)
            key[at : at + k] = keys[ok]
        at += k
    for n, (doc, h) in zip(range(cfg.word_min, cfg.word_max + 1), word_grams, strict=True):
        k = len(doc)
        if k:
            doc_split = ((doc << shift) + cfg.split).astype(np.uint32)  # columns from ``split`` on
            hashing.bucket_into(h, 100 + n, cfg.word_bits, doc_split, key[at : at + k])
        at += k
    key.sort()
    key = key[run_starts(key)]
    doc_out = np.right_shift(key, np.uint32(shift), out=np.empty(len(key), dtype=np.int64))
    col_out = np.bitwise_and(key, np.uint32((1 << shift) - 1), out=np.empty(len(key), dtype=np.int64))
    return Occurrences(doc_out, col_out, len(texts))


def run_starts(key: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Where each run of equal values of a sorted ``key`` starts (its first element; ``key[mask]``
    deduplicates it), without a concatenation."""
    out = np.empty(len(key), dtype=np.bool_)
    if len(key):
        out[0] = True
        np.not_equal(key[1:], key[:-1], out=out[1:])
    return out


def block_norms(occ: Occurrences, idf: F32, cfg: FeatureConfig) -> npt.NDArray[np.float64]:
    """Per occurrence, the norm of its text's block: sqrt(Σ idf² over that block's occurrences)."""
    w2 = idf[occ.col].astype(np.float64) ** 2
    is_word = occ.col >= cfg.split
    key = occ.doc * 2 + is_word
    norms = np.sqrt(np.bincount(key, weights=w2, minlength=2 * occ.n_docs))
    norms[norms == 0] = 1.0
    out: npt.NDArray[np.float64] = norms[key]
    return out


def fit_idf(occ: Occurrences, cfg: FeatureConfig) -> F32:
    """Smoothed inverse document frequency, as sklearn's ``TfidfTransformer(smooth_idf=True)``."""
    pairs = np.unique(occ.doc * cfg.n_features + occ.col)
    df = np.bincount(pairs % cfg.n_features, minlength=cfg.n_features)
    return (np.log((1 + occ.n_docs) / (1 + df)) + 1.0).astype(np.float32)


Floats = npt.NDArray[np.float16] | F32


@dataclass(frozen=True, slots=True)
class LinearHead:
    """``softmax(x @ coef + intercept)`` over (negative, neutral, positive). ``idf`` and ``coef``
    are float32 as trained, or float16 as shipped (``LexicalSentimentModel.load`` keeps them so:
    half the memory, and ``table`` computes in float32 either way)."""

    idf: Floats
    coef: Floats  # (n_features, 3)
    intercept: F32  # (3,)

    def table(self, out: F32 | None = None) -> F32:
        """Per feature: ``idf · coef`` (3 columns) and ``idf²`` (1 column), in float32, written into
        ``out`` when given (an ``(n_features, 4)`` view), so no temporary is as large as the table."""
        if out is None:
            out = np.empty((len(self.idf), 4), dtype=np.float32)
        idf = self.idf.astype(np.float32, copy=False)
        for k in range(3):
            np.multiply(idf, self.coef[:, k], out=out[:, k], dtype=np.float32)
        np.multiply(idf, idf, out=out[:, 3])
        return out

    def proba(self, occ: Occurrences, cfg: FeatureConfig) -> npt.NDArray[np.float64]:
        return head_proba(block_sums(self.table()[occ.col], occ, cfg), self.intercept)


def block_sums(rows: F32, occ: Occurrences, cfg: FeatureConfig) -> npt.NDArray[np.float64]:
    """Sum of ``rows`` (one per occurrence) per (text, block): row ``2·d`` is text ``d``'s character
    n-grams, row ``2·d + 1`` its word n-grams."""
    key = occ.doc * 2
    key += occ.col >= cfg.split  # in place: one int64 temporary fewer (~5.2 → 4.3 µs a post)
    out = np.zeros((2 * occ.n_docs, rows.shape[1]), dtype=np.float64)
    if len(key) == 0:
        return out
    if np.any(key[1:] < key[:-1]):  # binary features come sorted; raw counts may not
        order = np.argsort(key, kind="stable")
        key, rows = key[order], rows[order]
    starts = np.flatnonzero(run_starts(key))  # where each (text, block) run starts
    out[key[starts]] = np.add.reduceat(rows, starts, axis=0)
    return out


def head_proba(sums: npt.NDArray[np.float64], intercept: F32) -> npt.NDArray[np.float64]:
    """``softmax(x @ coef + intercept)`` per text, where ``x`` is its TF-IDF vector (binary tf, one
    L2 norm per block), without building ``x``: per text and block, the sum of ``idf · coef`` over
    its n-grams divided by the block's norm ``sqrt(Σ idf²)``. ``sums`` are ``block_sums`` of
    ``LinearHead.table()`` rows. (``train_lexical.design_matrix`` builds ``x`` itself, for training.)"""
    norms = np.sqrt(sums[:, 3])
    norms[norms == 0] = 1.0
    per_block = sums[:, :3] / norms[:, None]
    z = per_block[0::2] + per_block[1::2] + intercept
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = z
    return out


Mixture = dict[str, float]
"""Weights over heads; the probabilities of a post are the weighted mean of those heads'."""

DEFAULT_MIXTURE: Mixture = {"xlmt": 0.8, "afrisenti": 0.2}
AFRISENTI_MIXTURE: Mixture = {"afrisenti": 1.0}
ROUTES: dict[str, Mixture] = {
    # Detected language → heads, chosen on XLM-T val and AfriSenti dev (MODEL_CARD.md): the AfriSenti
    # languages that language identification names use the AfriSenti head. Tigrinya (``ti``) has no
    # training tweets in either set; the AfriSenti head's Ge'ez n-grams come from Amharic and transfer
    # to it no better than chance, so it uses the XLM-T head alone.
    **{
        lang: AFRISENTI_MIXTURE
        for lang in ("ha", "ig", "yo", "rw", "om", "sw", "ts", "am", "ak", "pcm", "ary", "arq")
    },
    "ti": {"xlmt": 1.0},
}
TRAINED_LANGUAGES = frozenset(
    # XLM-T train: Arabic, English, French, German, Hindi, Italian, Portuguese, Spanish
    {"ar", "en", "fr", "de", "hi", "it", "pt", "es"}
    # AfriSenti train: Amharic, Hausa, Igbo, Kinyarwanda, Nigerian Pidgin, Swahili, Tsonga, Twi,
    # Yoruba; Moroccan and Algerian Arabic (``ary``, ``arq`` where their own words show, else ``ar``),
    # Mozambican Portuguese ``pt``. Oromo and Tigrinya have dev tweets only.
    | {"am", "ha", "ig", "rw", "pcm", "sw", "ts", "ak", "yo", "ary", "arq"}
)
"""The detected languages of the shipped model's training tweets (``train_lexical`` reads those two
sets; a test ties this to the data's folders)."""


@dataclass(slots=True)
class LexicalSentimentModel:
    """Hashed n-gram features + linear heads, mixed per post by its detected language."""

    config: FeatureConfig
    heads: dict[str, LinearHead]
    default: Mixture = field(default_factory=lambda: dict(DEFAULT_MIXTURE))
    routes: dict[str, Mixture] = field(default_factory=lambda: dict(ROUTES))
    meta: dict[str, Any] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    """The languages its training tweets were in (empty: not known, taken as every language). The
    neural tier gives the lexical part less weight outside them (``neural.head.UNSEEN_LEXICAL``)."""
    _combined: tuple[tuple[str, ...], F32] | None = field(default=None, init=False, repr=False)

    def _table(self) -> tuple[tuple[str, ...], F32]:
        """Every head's ``table()`` side by side: one gather per n-gram serves all heads."""
        if self._combined is None:
            names = tuple(sorted(self.heads))
            table = np.empty((self.config.n_features, 4 * len(names)), dtype=np.float32)
            for i, name in enumerate(names):
                self.heads[name].table(out=table[:, 4 * i : 4 * i + 4])
            self._combined = (names, table)
        return self._combined

    def mixture_for(self, lang: str | None) -> Mixture:
        mix = self.routes.get(lang or "", self.default)
        usable = {h: w for h, w in mix.items() if h in self.heads and w > 0}
        if not usable:
            usable = {h: w for h, w in self.default.items() if h in self.heads and w > 0}
        if not usable:
            usable = {sorted(self.heads)[0]: 1.0}
        return usable

    def predict_proba(
        self, texts: Sequence[str], langs: Sequence[str | None] | None = None
    ) -> npt.NDArray[np.float64]:
        """Probabilities (n, 3) of (negative, neutral, positive). ``langs`` (the detected language
        of each text) picks the heads (``routes``); without it every text gets the default mixture."""
        out = np.zeros((len(texts), 3), dtype=np.float64)
        if not texts:
            return out
        langs = langs if langs is not None else [None] * len(texts)
        by_lang = {lg: self.mixture_for(lg) for lg in set(langs)}  # a few languages a batch
        mixes = [by_lang[lg] for lg in langs]
        occ = occurrences(normalize_all(texts), self.config)
        names, table = self._table()
        # np.take, not table[occ.col]: the same rows, ~4x faster for a 2-D table (numpy's fancy
        # indexing takes its general path; take copies whole rows)
        sums = block_sums(np.take(table, occ.col, axis=0), occ, self.config)
        needed = {h for m in mixes for h in m}
        for i, name in enumerate(names):
            if name not in needed:
                continue
            weights = np.array([m.get(name, 0.0) for m in mixes], dtype=np.float64)
            proba = head_proba(sums[:, 4 * i : 4 * i + 4], self.heads[name].intercept)
            out += weights[:, None] * proba
        out /= out.sum(axis=1, keepdims=True)
        return out

    def save(self, path: Path) -> None:
        """Heads and feature config as plain arrays (no pickle). The routing policy (``routes``,
        ``default``) is code, not data: it lives in this module."""
        meta = dict(self.meta)
        arrays: dict[str, npt.NDArray[Any]] = {
            "config": np.array(self.config.to_json()),
            "meta": np.array(json.dumps(meta, sort_keys=True)),
        }
        for name, head in self.heads.items():
            arrays[f"{name}.idf"] = head.idf.astype(np.float16)
            arrays[f"{name}.coef"] = head.coef.astype(np.float16)
            arrays[f"{name}.intercept"] = head.intercept.astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> LexicalSentimentModel:
        with np.load(_existing(path), allow_pickle=False) as z:
            return cls.from_arrays({k: z[k] for k in z.files})

    @classmethod
    def load_cached(cls, path: Path = DEFAULT_MODEL, cache_dir: Path | None = None) -> LexicalSentimentModel:
        """``load(path)`` with the arrays, the combined table among them, kept in murmur's cache
        folder under the file's SHA-256 and read back memory-mapped (``murmur.cache.mapped_arrays``):
        a process that starts skips unpacking the file and building the table (~0.2 s), and
        ``murmur run``'s workers share one copy of it."""
        digest = file_digest(_existing(path), _CACHED_FORMAT)

        def build() -> dict[str, npt.NDArray[Any]]:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            names, table = cls.from_arrays(arrays)._table()
            return {**arrays, _TABLE: table, _TABLE_HEADS: np.array(names)}

        return cls.from_arrays(mapped_arrays(f"lexical-{path.stem}", digest, build, cache_dir))

    @classmethod
    def from_arrays(cls, z: Mapping[str, npt.NDArray[Any]]) -> LexicalSentimentModel:
        """The model ``save`` wrote, from its arrays (and the combined table, when they hold it)."""
        cfg = FeatureConfig.from_json(str(z["config"]))
        meta: dict[str, Any] = json.loads(str(z["meta"]))
        names = sorted({k.split(".")[0] for k in z if k.endswith(".coef")})
        heads = {
            n: LinearHead(  # float16 as saved: the combined table is what predicts
                idf=z[f"{n}.idf"],
                coef=z[f"{n}.coef"],
                intercept=z[f"{n}.intercept"].astype(np.float32),
            )
            for n in names
        }
        model = cls(cfg, heads, dict(DEFAULT_MIXTURE), dict(ROUTES), meta, TRAINED_LANGUAGES)
        if _TABLE in z:
            model._combined = (tuple(str(h) for h in z[_TABLE_HEADS]), z[_TABLE])
        return model


_CACHED_FORMAT = "1"  # bump when ``load_cached``'s arrays change shape or meaning
_TABLE = "_combined.table"
_TABLE_HEADS = "_combined.heads"


def _existing(path: Path) -> Path:
    if not path.exists():
        msg = (
            f"lexical sentiment model not found at {path}; "
            "train it with `python -m murmur.enrich.train_lexical` (needs ../shared/data)"
        )
        raise ModelError(msg)
    return path


@cache
def default_model() -> LexicalSentimentModel:
    """The shipped model, loaded once per process."""
    return LexicalSentimentModel.load_cached(DEFAULT_MODEL)


def is_default_model(model: object) -> bool:
    """Whether ``model`` is the shipped one that ``default_model()`` loaded (without loading it)."""
    return default_model.cache_info().currsize > 0 and model is default_model()


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
        # the shipped model is reloaded from its artifact, not pickled; a caller's model travels along
        return {"model": None if self._model is None or is_default_model(self._model) else self._model}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._model = state.get("model")

    def warm_up(self) -> None:
        """Load the model and its combined table now (``Pipeline.warm_up``; ~0.7 s), not inside the
        first batch."""
        self.model.predict_proba(["warm up"])

    chunk = 256
    """Posts per vectorized call: small enough for the n-gram arrays to stay in cache."""

    def process(self, posts: Sequence[Post]) -> None:
        for i in range(0, len(posts), self.chunk):
            self._process(posts[i : i + self.chunk])

    def _process(self, posts: Sequence[Post]) -> None:
        proba = self.model.predict_proba([p.text for p in posts], [p.lang for p in posts])
        best = proba.argmax(axis=1)
        score = proba[:, 2] - proba[:, 0]
        for post, k, s in zip(posts, best.tolist(), score.tolist(), strict=True):
            post.sentiment = LABELS[k]
            post.sentiment_score = round(float(s), 4)
            post.sentiment_model = self.name
