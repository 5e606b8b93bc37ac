"""The model-hub backend, on a tiny XLM-R classifier this test builds itself (nothing downloaded)."""

from __future__ import annotations

import pickle
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from murmur.enrich.transformer import TransformerSentiment, TransformerSentimentModel, label_columns
from murmur.errors import ModelError
from murmur.types import Post, SentimentLabel

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEXTS = ["good movie", "the movie was not very good at all", "awful", "", "ok " * 300, "fine fine"]


def build_tiny(path: Path, id2label: dict[int, str], *, bias_to: int | None = None) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaForSequenceClassification

    words = ["good", "bad", "ok", "the", "movie", "is", "was", "not", "very", "great"]
    words += ["awful", "fine", "at", "all"]
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(f"▁{w}", -1.0 - i * 0.1) for i, w in enumerate(words)]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"] + [("▁", -6.0), ("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=64,
    )
    torch.manual_seed(0)
    options: dict[str, Any] = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=66,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        initializer_range=0.5,
    )
    model = XLMRobertaForSequenceClassification(XLMRobertaConfig(**options)).eval()  # type: ignore[no-untyped-call]
    if bias_to is not None:
        with torch.no_grad():
            model.classifier.out_proj.bias[bias_to] = 100.0
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny"), {0: "negative", 1: "neutral", 2: "positive"})


def test_onnx_and_torch_agree_and_batching_is_invisible(tiny: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    pt = TransformerSentimentModel(tiny, backend="torch", device="cpu")
    ort = TransformerSentimentModel(tiny, backend="onnx", cache_dir=cache)
    p_pt = pt.predict_proba(TEXTS)
    p_ort = ort.predict_proba(TEXTS)
    assert p_pt.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(p_pt.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(p_ort, p_pt, atol=1e-5)
    assert np.ptp(p_pt[:, 0]) > 1e-3, "the tiny model must tell texts apart, or this test proves nothing"
    one_by_one = np.concatenate([ort.predict_proba([t]) for t in TEXTS])
    np.testing.assert_allclose(one_by_one, p_ort, atol=1e-5)
    exported = list((cache / "transformers").glob("*.onnx"))
    assert len(exported) == 1
    # a second load reuses the cached export
    mtime = exported[0].stat().st_mtime_ns
    TransformerSentimentModel(tiny, backend="onnx", cache_dir=cache)
    assert exported[0].stat().st_mtime_ns == mtime


def test_labels_map_by_name_not_position(tmp_path: Path) -> None:
    # output 0 is "Positive" and wins every time: murmur must call every post positive
    path = build_tiny(tmp_path / "m", {0: "Positive", 1: "Negative", 2: "Neutral"}, bias_to=0)
    model = TransformerSentimentModel(path, backend="onnx", cache_dir=tmp_path / "cache")
    assert model.columns == [2, 0, 1]
    proba = model.predict_proba(TEXTS)
    assert (proba.argmax(axis=1) == 2).all()
    comp = TransformerSentiment(model)
    posts = [
        Post(
            platform="file",
            post_id=str(i),
            created_at=T0,
            ingested_at=T0,
            author_key="k",
            text=t,
        )
        for i, t in enumerate(TEXTS[:3])
    ]
    comp.process(posts)
    assert {p.sentiment for p in posts} == {"positive"}
    assert all(p.sentiment_score is not None and p.sentiment_score > 0.9 for p in posts)
    assert posts[0].sentiment_model == f"murmur.sentiment.transformer@1:{path}"


def test_two_class_models_and_unknown_labels() -> None:
    assert label_columns({0: "NEGATIVE", 1: "POSITIVE"}) == [0, 2]
    with pytest.raises(ModelError, match="label_map"):
        label_columns({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    assert label_columns({0: "LABEL_0", 1: "LABEL_1"}, {"LABEL_0": "negative", "LABEL_1": "positive"}) == [
        0,
        2,
    ]


def test_hub_name_resolves_from_local_cache_only(tiny: Path, tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    snap = hub / "models--someorg--tiny-sentiment" / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny, snap)
    (hub / "models--someorg--tiny-sentiment" / "refs").mkdir()
    (hub / "models--someorg--tiny-sentiment" / "refs" / "main").write_text(snap.name)
    model = TransformerSentimentModel(
        "someorg/tiny-sentiment", backend="onnx", hf_cache_dir=hub, cache_dir=tmp_path / "cache"
    )
    assert model.path == snap
    assert model.predict_proba(["good"]).shape == (1, 3)
    with pytest.raises(ModelError, match="never downloads"):
        TransformerSentimentModel("someorg/not-here", backend="onnx", hf_cache_dir=hub)


def test_lone_surrogates_do_not_fail_the_batch(tiny: Path, tmp_path: Path) -> None:
    # the Rust tokenizer rejects a str that is not valid UTF-8: the whole batch used to fail (TypeError)
    model = TransformerSentimentModel(tiny, backend="onnx", cache_dir=tmp_path / "cache")
    texts = ["good movie", "lone \ud800 surrogate", "split pair \ud83d\ude00", "awful"]
    proba = model.predict_proba(texts)
    assert proba.shape == (4, 3)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba[[0, 3]], model.predict_proba(["good movie", "awful"]), atol=1e-5)
    np.testing.assert_allclose(proba[2], model.predict_proba(["split pair 😀"])[0], atol=1e-5)


def test_a_pickled_component_rebuilds_the_model_with_its_options(tmp_path: Path) -> None:
    # the copy used to rebuild it from the name alone: no label_map (ModelError), max_length 128
    path = build_tiny(tmp_path / "m", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    labels: dict[str, SentimentLabel] = {"LABEL_0": "negative", "LABEL_1": "neutral", "LABEL_2": "positive"}
    model = TransformerSentimentModel(
        path, backend="onnx", cache_dir=tmp_path / "cache", label_map=labels, max_length=4
    )
    comp = TransformerSentiment(model)
    clone = pickle.loads(pickle.dumps(comp))
    a, b = (
        [
            Post(platform="file", post_id=str(i), created_at=T0, ingested_at=T0, author_key="k", text=t)
            for i, t in enumerate(TEXTS)
        ]
        for _ in range(2)
    )
    comp.process(a)
    clone.process(b)
    assert clone.model.max_length == 4
    assert [(p.sentiment, p.sentiment_score) for p in b] == [(p.sentiment, p.sentiment_score) for p in a]
