from __future__ import annotations

import json
import pickle
import statistics
import zipfile
from pathlib import Path

import numpy as np
import pytest

from murmur.enrich.evaluate import XLMT_LANGS, firehose_predict, load_afrisenti, load_xlmt, macro_f1
from murmur.enrich.lexical import (
    DEFAULT_MODEL,
    TRAINED_LANGUAGES,
    LexicalSentiment,
    LexicalSentimentModel,
    default_model,
    normalize,
    normalize_all,
)
from murmur.errors import ModelError
from murmur.testing import has_shared_data, shared_data
from tests.enrich.conformance import make_posts

needs_data = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data/sentiment")


def test_artifact_is_small_and_holds_no_pickles() -> None:
    assert DEFAULT_MODEL.stat().st_size < 15_000_000
    with zipfile.ZipFile(DEFAULT_MODEL) as z:
        for name in z.namelist():
            with z.open(name) as f:
                header = f.read(128)
            assert b"'descr': '|O'" not in header, name
            assert b"'descr': 'O'" not in header, name
    assert (DEFAULT_MODEL.parent / "MODEL_CARD.md").exists()


def test_missing_artifact_names_the_training_command(tmp_path: object) -> None:
    from pathlib import Path

    with pytest.raises(ModelError, match="train_lexical"):
        LexicalSentimentModel.load(Path(str(tmp_path)) / "nope.npz")


def test_normalize() -> None:
    assert normalize("@Bob LOOOOOVE it https://t.co/x") == " @user looove it http "
    assert normalize("it\\u2019s") == " it’s "


def test_normalize_all_is_normalize_of_each_text() -> None:
    """The batch finds the texts with long runs for the long-run regex: a run neither starts nor ends
    at a text's edge, line breaks are no run (the regex's ``.``), and the texts come back in order."""
    texts = [
        "aaa",
        "a",  # "aaa" + "a" would be a run of four if texts ran into each other
        "\n\n\n\n\n",
        "SOOOOO good!!!!",
        "",
        "x\n\n\n\ny",
        "ΣΣΣΣ İİİİ 😂😂😂😂 \ud800\ud800\ud800\ud800",
        "@Bob aaaa https://t.co/x",
        "abc",
        "bbbb",
    ]
    assert normalize_all(texts) == [normalize(t) for t in texts]
    assert normalize_all(texts)[3] == " sooo good!!! "
    assert normalize_all([]) == []
    for n in range(6):
        assert normalize_all(["a" * n, "b" * n]) == [normalize("a" * n), normalize("b" * n)]


def test_normalize_collapses_every_kind_of_whitespace() -> None:
    # printable texts with single inner spaces skip the split and join: the rest must not
    texts = ["a b", " a b", "a b ", "a  b", "a\tb", "a\nb", "a\u3000b", "a\xa0b", "a\u2028b", "a\x1fb", ""]
    for text in texts:
        assert normalize(text) == " " + " ".join(text.split()) + " "


def test_predict_proba_shape_and_obvious_cases() -> None:
    model = default_model()
    texts = [
        "I love this, best day ever, thank you so much!",
        "This is terrible, I hate it, worst service ever",
        "",
        "😂",
    ]
    p = model.predict_proba(texts)
    assert p.shape == (4, 3)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0].argmax() == 2
    assert p[1].argmax() == 0
    assert model.predict_proba([]).shape == (0, 3)
    routed = model.predict_proba(texts[:2], ["ha", None])
    assert routed.shape == (2, 3)


def test_component_assigns_label_score_and_model_and_pickles_small() -> None:
    comp = LexicalSentiment()
    posts = make_posts(["Fantastic news, so happy!", "Awful, disgusting, I am furious"])
    for p in posts:
        p.lang = "en"
    comp.process(posts)
    assert [p.sentiment for p in posts] == ["positive", "negative"]
    assert all(p.sentiment_model == "murmur.sentiment.lexical@1" for p in posts)
    assert posts[0].sentiment_score is not None
    assert 0 < posts[0].sentiment_score <= 1
    assert posts[1].sentiment_score is not None
    assert -1 <= posts[1].sentiment_score < 0
    assert len(pickle.dumps(comp)) < 1000  # the model is reloaded, not pickled

    assert len(pickle.dumps(LexicalSentiment(default_model()))) < 1000


def test_a_pickled_component_keeps_a_callers_model() -> None:
    # the copy used to drop the model it was built with and load the shipped one instead
    shipped = default_model()
    mine = LexicalSentimentModel(shipped.config, {"afrisenti": shipped.heads["afrisenti"]})
    comp = LexicalSentiment(mine)
    clone = pickle.loads(pickle.dumps(comp))
    texts = ["Fantastic news, so happy!", "Awful, disgusting, I am furious", "The meeting is at noon"]
    runs = []
    for c in (comp, clone, LexicalSentiment()):
        posts = make_posts(texts)
        for p in posts:
            p.lang = "en"
        c.process(posts)
        runs.append([p.sentiment_score for p in posts])
    assert runs[1] == runs[0]
    assert runs[2] != runs[0], "the caller's model must score differently, or this test proves nothing"


@needs_data
def test_shipped_model_reproduces_its_model_card() -> None:
    # Guards against a featurizer change that would silently break the shipped weights.
    card = json.loads((DEFAULT_MODEL.parent / "MODEL_CARD.json").read_text(encoding="utf-8"))
    val = load_xlmt(shared_data("sentiment", "xlmt"), "val")
    model = default_model()
    xlmt_only = LexicalSentimentModel(model.config, model.heads, {"xlmt": 1.0}, {})
    for s in val:
        pred = xlmt_only.predict_proba(s.texts).argmax(axis=1).tolist()
        assert macro_f1(s.labels, pred) == pytest.approx(
            card["xlmt"]["val"][s.language]["macro_f1"], abs=2e-3
        )


@needs_data
def test_firehose_sentiment_targets_on_val_and_dev() -> None:
    val = load_xlmt(shared_data("sentiment", "xlmt"), "val")
    scores = [macro_f1(s.labels, firehose_predict(s.texts)) for s in val]
    assert statistics.fmean(scores) >= 0.57, scores
    for s in load_afrisenti(shared_data("sentiment", "afrisenti"), "dev"):
        majority = int(np.bincount(s.labels, minlength=3).argmax())
        ours = macro_f1(s.labels, firehose_predict(s.texts))
        assert ours > macro_f1(s.labels, [majority] * len(s.labels)) + 0.03, s.language


def test_the_shipped_heads_stay_float16_and_the_table_is_their_float32_product() -> None:
    # load() used to widen the heads to float32 (38 MB) beside the combined table (38 MB) that
    # predicts; kept as saved (19 MB), the table holds the very same float32 values
    model = LexicalSentimentModel.load()
    for head in model.heads.values():
        assert head.idf.dtype == head.coef.dtype == np.float16
    names, table = model._table()
    assert table.dtype == np.float32
    assert table.shape == (model.config.n_features, 4 * len(names))
    for i, name in enumerate(names):
        idf, coef = (model.heads[name].idf.astype(np.float32), model.heads[name].coef.astype(np.float32))
        expected = np.stack([idf * coef[:, 0], idf * coef[:, 1], idf * coef[:, 2], idf * idf], axis=1)
        assert np.array_equal(table[:, 4 * i : 4 * i + 4], expected)
        assert np.array_equal(model.heads[name].table(), expected)


@needs_data
def test_trained_languages_are_the_training_folders() -> None:
    """``TRAINED_LANGUAGES`` (where the neural tier trusts the lexical part fully) is the detected
    codes of every folder with train tweets, and nothing else (Oromo and Tigrinya have dev only)."""
    from murmur.enrich.train_langid import AFRISENTI_CODES

    codes = {**AFRISENTI_CODES, "arq": "ar", "ary": "ar", "pcm": "pcm"}
    xlmt = shared_data("sentiment", "xlmt")
    afrisenti = shared_data("sentiment", "afrisenti")
    found = {XLMT_LANGS[d.name] for d in xlmt.iterdir() if (d / "train_text.txt").exists()}
    found |= {codes[d.name] for d in afrisenti.iterdir() if (d / "train.tsv").exists()}
    # Moroccan and Algerian tweets that use their dialect's own words are ``ary`` and ``arq``
    found |= {d.name for d in afrisenti.iterdir() if d.name in ("ary", "arq") and (d / "train.tsv").exists()}
    assert found == TRAINED_LANGUAGES
    assert not {"om", "ti"} & TRAINED_LANGUAGES
    assert default_model().languages == TRAINED_LANGUAGES


def test_the_shipped_model_mapped_from_the_cache_predicts_as_loaded(tmp_path: Path) -> None:
    # the default model's arrays and combined table are kept in the cache folder and mapped back
    # (workers start without unpacking the file or building the table): same probabilities
    texts = ["I love this so much!", "terrible, awful day", "la réunion est à 15h", "مرحبا بكم", "ok"]
    langs = ["en", "en", "fr", "ar", None]
    loaded = LexicalSentimentModel.load(DEFAULT_MODEL)
    built = LexicalSentimentModel.load_cached(DEFAULT_MODEL, tmp_path)
    mapped = LexicalSentimentModel.load_cached(DEFAULT_MODEL, tmp_path)
    (folder,) = tmp_path.iterdir()
    assert (folder / "_combined.table.npy").exists()
    assert not mapped._table()[1].flags.writeable  # mapped, not rebuilt
    want = loaded.predict_proba(texts, langs)
    np.testing.assert_array_equal(built.predict_proba(texts, langs), want)
    np.testing.assert_array_equal(mapped.predict_proba(texts, langs), want)
    assert mapped.meta == loaded.meta
    assert mapped.config == loaded.config
    with pytest.raises(ModelError, match="not found"):
        LexicalSentimentModel.load_cached(tmp_path / "missing.npz", tmp_path)
