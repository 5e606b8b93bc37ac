"""The neural tier's components: order, outputs, pickling, and the sentiment model the eval CLI uses."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import numpy as np
import pytest

from murmur.enrich.base import COMPONENTS, Component, Pipeline
from murmur.enrich.neural import neural_pipeline, neural_sentiment_model, register_builtins
from murmur.enrich.neural.components import (
    EMBED_NAME,
    SENTIMENT_NAME,
    E5Embed,
    E5Sentiment,
    NeuralSentimentModel,
    neural_components,
)
from murmur.enrich.neural.embedder import E5Embedder
from murmur.enrich.neural.head import default_head
from murmur.enrich.neural.samples import mixed_posts
from murmur.enrich.neural.tiered import TieredEnricher
from murmur.errors import PipelineError
from murmur.types import Post

T0 = datetime(2026, 5, 1, tzinfo=UTC)
TEXTS = [
    "What a fantastic concert, I loved every minute!",
    "Der Zug ist schon wieder ausgefallen. Furchtbar.",
    "La réunion est prévue à 15 h.",
    "Odio este servicio, es horrible.",
]


def posts() -> list[Post]:
    return [
        Post(platform="file", post_id=str(i), created_at=T0, ingested_at=T0, author_key="k", text=t)
        for i, t in enumerate(TEXTS)
    ]


def test_embed_then_sentiment(embedder: E5Embedder) -> None:
    batch = posts()
    comps: list[Component] = [E5Embed(embedder), E5Sentiment()]
    Pipeline(comps).process(batch)
    vectors = np.asarray([p.embedding for p in batch])
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert {p.embedding_model for p in batch} == {EMBED_NAME}
    assert {p.sentiment_model for p in batch} == {SENTIMENT_NAME}
    assert [p.sentiment for p in batch][:2] == ["positive", "negative"]
    assert batch[3].sentiment == "negative"
    for p in batch:
        assert p.sentiment_score is not None
        assert -1 <= p.sentiment_score <= 1
    # the model the eval CLI calls gives the same labels from the texts alone
    proba = neural_sentiment_model().predict_proba(TEXTS)
    assert proba.shape == (4, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert [("negative", "neutral", "positive")[k] for k in proba.argmax(axis=1)] == [
        p.sentiment for p in batch
    ]


def test_a_language_the_lexical_model_never_saw_weighs_it_less_when_sure(embedder: E5Embedder) -> None:
    model = neural_sentiment_model()
    langs = ["ru", "en", "und", None, "om", "ru"]
    mask = model.unseen(langs, [0.9, 0.9, 0.9, 0.9, 0.9, 0.69])
    assert mask is not None
    assert mask.tolist() == [True, False, False, False, True, False]
    assert model.unseen(langs[:1]) is not None  # no confidences: the language counts as sure
    texts = ["Какой прекрасный день, спасибо всем!", "Это ужасно, опять всё сломалось."]
    sure = model.predict_proba(texts, ["ru", "ru"], [0.95, 0.95])
    unsure = model.predict_proba(texts, ["ru", "ru"], [0.5, 0.5])
    assert np.abs(sure - unsure).max() > 0.01
    np.testing.assert_allclose(model.predict_proba(texts, ["ru", "ru"]), sure)
    # the component reads the post's language and confidence
    batch = [
        Post(platform="file", post_id=str(i), created_at=T0, ingested_at=T0, author_key="k", text=t)
        for i, t in enumerate(texts * 2)
    ]
    for post, conf in zip(batch, [0.95, 0.95, 0.5, 0.5], strict=True):
        post.lang, post.lang_conf = "ru", conf
    Pipeline([E5Embed(embedder), E5Sentiment()]).process(batch)
    expected = np.concatenate([sure, unsure])
    scores = [p.sentiment_score or 0.0 for p in batch]
    np.testing.assert_allclose(scores, (expected[:, 2] - expected[:, 0]).round(4), atol=0.02)


def test_one_by_one_equals_batch(embedder: E5Embedder) -> None:
    batch = posts()
    comps: list[Component] = [E5Embed(embedder), E5Sentiment()]
    Pipeline(comps).process(batch)
    for single, expected in zip(posts(), batch, strict=True):
        Pipeline(comps).process([single])
        assert single.sentiment == expected.sentiment
        assert single.sentiment_score == pytest.approx(expected.sentiment_score, abs=0.01)


def test_order_is_checked_and_missing_embedding_is_an_error() -> None:
    with pytest.raises(PipelineError, match=r"murmur\.embed\.e5"):
        Pipeline([E5Sentiment(), E5Embed()])
    with pytest.raises(PipelineError, match="no embedding"):
        E5Sentiment().process(posts())


def test_components_pickle_without_their_models(embedder: E5Embedder) -> None:
    for comp in (E5Embed(embedder), E5Sentiment()):
        data = pickle.dumps(comp)
        assert len(data) < 1000
        again = pickle.loads(data)
        assert again.name == comp.name


def test_a_pickled_component_keeps_the_embedder_and_model_it_was_built_with(embedder: E5Embedder) -> None:
    # the copies used to drop them and run the process-wide default instead (another backend, prefix)
    mine = E5Embedder(backend="onnx", prefix="passage: ", branch=default_head().branch)
    comps: list[Component] = [E5Embed(mine), E5Sentiment(NeuralSentimentModel(mine))]
    copies: list[Component] = pickle.loads(pickle.dumps(comps))
    embed, sentiment = copies
    assert isinstance(embed, E5Embed)
    assert isinstance(sentiment, E5Sentiment)
    assert embed.embedder is sentiment.model.embedder  # one embedder, loaded once for both
    assert (embed.embedder.backend, embed.embedder.tokenizer.prefix) == ("onnx", "passage: ")
    assert sentiment.model.head is default_head()  # the shipped head is loaded again, not pickled
    a, b, default = posts(), posts(), posts()
    Pipeline(comps).process(a)
    Pipeline(copies).process(b)
    Pipeline([E5Embed(embedder), E5Sentiment()]).process(default)
    vectors = [np.asarray([p.embedding for p in batch]) for batch in (a, b, default)]
    np.testing.assert_array_equal(vectors[1], vectors[0])
    assert [p.sentiment_score for p in b] == [p.sentiment_score for p in a]
    assert not np.allclose(vectors[2], vectors[0], atol=1e-3), (
        "the default must differ, or this proves nothing"
    )
    assert len(pickle.dumps([E5Embed(embedder), E5Sentiment(neural_sentiment_model())])) < 1000


def test_registered_and_neural_pipeline_builds() -> None:
    register_builtins()
    register_builtins()  # idempotent
    assert COMPONENTS.get("murmur.embed.e5") is E5Embed
    assert COMPONENTS.get(SENTIMENT_NAME) is E5Sentiment
    pipe = neural_pipeline()
    names = [c.name for c in pipe.components]
    assert names[0].startswith("murmur.lang.")
    assert "murmur.sentiment.lexical@1" not in names
    (enricher,) = [c for c in pipe.components if isinstance(c, TieredEnricher)]
    stateless, ordered = pipe.split()
    assert enricher in stateless.components  # it may run in worker processes
    assert [c.name for c in ordered.components] == ["murmur.neardup.cluster@3"]
    plain = [c.name for c in neural_pipeline(tiered=False).components]
    assert plain[1:3] == [EMBED_NAME, SENTIMENT_NAME]


def test_shared_forward_pass_gives_the_same_labels_as_recomputing(embedder: E5Embedder) -> None:
    """Built by neural_components(), the sentiment step reuses the branch logits the embedding step
    computed in the same forward pass; on its own it recomputes them: same result, one pass fewer."""
    shared = neural_components()
    calls: list[int] = []
    model = neural_sentiment_model()
    original = model.embedder.encode_with_sentiment

    def counting(texts: list[str], **kw: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(texts))
        return original(texts)

    a, b = posts(), posts()
    try:
        model.embedder.encode_with_sentiment = counting  # type: ignore[method-assign,assignment]
        Pipeline(shared).process(a)
        shared_calls = len(calls)
        Pipeline([E5Embed(embedder), E5Sentiment()]).process(b)
    finally:
        del model.embedder.encode_with_sentiment
    assert model.uses_branch, "the shipped head has a fine-tuned branch"
    assert shared_calls == 1
    assert len(calls) == 2  # the separate sentiment step had to run the model again
    assert [p.sentiment for p in a] == [p.sentiment for p in b]
    for x, y in zip(a, b, strict=True):
        assert x.sentiment_score == pytest.approx(y.sentiment_score, abs=0.01)


@pytest.mark.usefixtures("need_shared")
@pytest.mark.parametrize("backend", ["auto", "onnx"])
def test_how_much_batch_mates_move_the_branch_logits(embedder: E5Embedder, backend: str) -> None:
    model = embedder if backend == "auto" else E5Embedder(backend="onnx", branch=default_head().branch)
    texts = mixed_posts(150, 50)
    _, together = model.encode_with_sentiment(texts)
    apart = np.concatenate(
        [model.encode_with_sentiment(texts[i : i + 7])[1] for i in range(0, len(texts), 7)]
    )
    moved = np.abs(apart - together).max(axis=1)
    flipped = float((apart.argmax(axis=1) != together.argmax(axis=1)).mean())
    if model.dtype_name == "float32" and model.backend != "onnx-int8":
        np.testing.assert_allclose(apart, together, atol=1e-4)
        assert flipped == 0
    else:
        # int8 quantizes each product's input with one scale per batch (ONNX Runtime's dynamic
        # quantization), so a post's logits move with its batch-mates: measured on 2 cores (AVX2)
        # median 0.05, 99th percentile 0.26, 2 of 200 labels, all near a class boundary
        assert float(np.median(moved)) < 0.1, moved
        assert flipped <= 0.03, flipped


def test_warm_up_loads_the_neural_tier_before_the_first_batch(embedder: E5Embedder) -> None:
    """The runtime calls ``Pipeline.warm_up`` so that no batch pays for a model load: the tiered
    enricher must pass it on, or e5 loads inside the first batch and makes its posts late."""
    pipe = neural_pipeline()
    (enricher,) = [c for c in pipe.components if isinstance(c, TieredEnricher)]
    embed, sentiment = enricher.neural
    assert isinstance(embed, E5Embed)
    assert isinstance(sentiment, E5Sentiment)

    def loaded() -> tuple[bool, bool]:
        return embed._embedder is not None, sentiment._model is not None

    assert loaded() == (False, False)  # lazily loaded
    pipe.warm_up()
    assert loaded() == (True, True)
