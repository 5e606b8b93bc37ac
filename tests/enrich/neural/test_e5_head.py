"""The sentiment head's artifact: plain arrays that round-trip, and a mixture that refuses to guess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from murmur.enrich.neural.e5file import E5File
from murmur.enrich.neural.head import HEAD_PATH, UNSEEN_LEXICAL, Dense, E5Head, Member, Mix
from murmur.enrich.neural.model import SentimentBranch
from murmur.errors import ModelError


def test_head_round_trips_with_its_branch(tmp_path: Path) -> None:
    weights = E5File()
    branch = SentimentBranch.init_from(weights, 10)
    with torch.no_grad():
        branch.out.weight.normal_()
    rng = np.random.default_rng(0)
    lr = Member((Dense(rng.normal(size=(384, 3)).astype(np.float32), np.zeros(3, np.float32)),))
    head = E5Head([lr], Mix(0.3, 0.5, 0.2), branch.arrays(), {"note": "test"})
    path = tmp_path / "head.npz"
    head.save(path)
    again = E5Head.load(path)
    assert again.mix == Mix(0.3, 0.5, 0.2)
    assert again.meta["note"] == "test"
    assert again.branch is not None
    for name, arr in branch.arrays().items():
        np.testing.assert_allclose(again.branch[name], arr, rtol=2e-3, atol=2e-3)
    x = rng.normal(size=(5, 384)).astype(np.float32)
    np.testing.assert_allclose(again.proba_e5(x), head.proba_e5(x), atol=1e-6)
    rebuilt = again.branch_module(12, weights.config.eps, torch.float32)
    assert isinstance(rebuilt, SentimentBranch)
    assert rebuilt.start == 10


def test_mixture_needs_every_weighted_source() -> None:
    head = E5Head([], Mix(0.5, 0.0, 0.5))
    p = np.full((2, 3), 1 / 3)
    np.testing.assert_allclose(head.combine(p, None, p), p)
    with pytest.raises(ModelError, match="lexical"):
        head.combine(p, None, None)


def test_unseen_rows_give_the_lexical_part_less_weight_and_the_others_are_untouched() -> None:
    head = E5Head([], Mix(0.1, 0.3, 0.6))
    rng = np.random.default_rng(1)
    pm, pb, pl = (rng.dirichlet(np.ones(3), size=4) for _ in range(3))
    shipped = 0.1 * pm + 0.3 * pb + 0.6 * pl
    unseen = np.array([False, True, False, True])
    p = head.combine(pm, pb, pl, unseen)
    assert np.array_equal(p[~unseen], head.combine(pm, pb, pl)[~unseen])  # bit for bit
    np.testing.assert_allclose(p[~unseen], shipped[~unseen])
    e5 = (0.1 * pm + 0.3 * pb) / 0.4
    np.testing.assert_allclose(p[unseen], ((1 - UNSEEN_LEXICAL) * e5 + UNSEEN_LEXICAL * pl)[unseen])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # a mixture that already gives the lexical part less keeps its own weights
    light = E5Head([], Mix(0.5, 0.3, 0.2))
    assert np.array_equal(light.combine(pm, pb, pl, unseen), light.combine(pm, pb, pl))


def test_shipped_head_and_its_card() -> None:
    head = E5Head.load(HEAD_PATH)
    assert abs(head.mix.members + head.mix.branch + head.mix.lexical - 1) < 1e-6
    card = HEAD_PATH.with_suffix(".md").read_text(encoding="utf-8")
    assert "python -m murmur.enrich.neural.train" in card
    for lang in ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish"):
        assert lang in card
    with pytest.raises(ModelError, match="train it with"):
        E5Head.load(HEAD_PATH.with_name("missing.npz"))


def test_shipped_members_compute_in_float32_as_float64_would() -> None:
    """The members' products run in float32 (~3x faster than float64, which capped a GPU's rate);
    their probabilities stay within 1e-6 of a float64 computation and give the same labels."""
    head = E5Head.load(HEAD_PATH)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert head.members[-1].layers[0](x).dtype == np.float32

    def float64(m: Member) -> np.ndarray:
        h = x.astype(np.float64) * m.input_scale
        for i, layer in enumerate(m.layers):
            h = h @ layer.w.astype(np.float64) + layer.b.astype(np.float64)
            if i < len(m.layers) - 1:
                h = np.maximum(h, 0.0)
        e = np.exp(h - h.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    ref = np.mean([float64(m) for m in head.members], axis=0)
    ours = head.proba_e5(x)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert (ours.argmax(axis=1) == ref.argmax(axis=1)).all()
