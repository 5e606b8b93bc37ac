"""The sentiment head's artifact: plain arrays that round-trip, and a mixture that refuses to guess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from murmur.enrich.neural.e5file import E5File
from murmur.enrich.neural.head import HEAD_PATH, Dense, E5Head, Member, Mix
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


def test_shipped_head_and_its_card() -> None:
    head = E5Head.load(HEAD_PATH)
    assert abs(head.mix.members + head.mix.branch + head.mix.lexical - 1) < 1e-6
    card = HEAD_PATH.with_suffix(".md").read_text(encoding="utf-8")
    assert "python -m murmur.enrich.neural.train" in card
    for lang in ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish"):
        assert lang in card
    with pytest.raises(ModelError, match="train it with"):
        E5Head.load(HEAD_PATH.with_name("missing.npz"))
