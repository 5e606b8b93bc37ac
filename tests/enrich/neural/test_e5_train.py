"""The command that trains the shipped sentiment head runs on this machine and writes a head that loads.

A small run (24 tweets per language and split, one epoch): it proves the training path, not the
model's quality (`docs/enrichment.md` has the full run's figures).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from murmur.enrich.neural import train
from murmur.enrich.neural.head import E5Head
from murmur.enrich.neural.model import SentimentBranch


@pytest.mark.usefixtures("need_shared")
def test_training_command_writes_a_head_that_loads(tmp_path: Path) -> None:
    out = tmp_path / "head.npz"
    train.main(["--out", str(out), "--limit", "24", "--epochs", "1", "--mlps", "1"])
    head = E5Head.load(out)
    assert abs(head.mix.members + head.mix.branch + head.mix.lexical - 1) < 1e-6
    assert len(head.members) == 2  # the logistic regression and one MLP
    assert head.branch is not None
    branch = head.branch_module(12, 1e-12, torch.float32)
    assert len(branch.layers) == 12 - branch.start
    p = head.proba_e5(np.random.default_rng(0).normal(size=(4, 384)).astype(np.float32))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    card = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "python -m murmur.enrich.neural.train" in card
    assert "192 tweets" in card  # 8 languages x 24
    assert head.meta["branch"]["epochs"] == 1


def test_finetune_returns_the_last_epoch_and_scores_every_epoch() -> None:
    from murmur.enrich.neural.embedder import E5Embedder
    from murmur.enrich.neural.finetune import finetune

    embedder = E5Embedder(backend="torch", device="cpu", dtype=torch.float32)
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 9, 48)
    states = [torch.from_numpy(rng.normal(size=(int(n), 384)).astype(np.float32)) for n in lengths]
    labels = rng.integers(0, 3, 48).astype(np.int64)
    seen: list[dict[str, np.ndarray]] = []
    scores = iter([0.9, 0.2])  # val prefers the first epoch: it must not choose it

    def evaluate(branch: SentimentBranch) -> float:
        seen.append(branch.arrays())
        return next(scores)

    branch, history = finetune(embedder, states, labels, evaluate=evaluate, epochs=2, lr=1e-3, batch=8)
    assert history == [0.9, 0.2]
    assert not branch.training
    assert not np.allclose(seen[0]["out.w"], seen[1]["out.w"])  # snapshots, not views of live weights
    for name, arr in branch.arrays().items():
        np.testing.assert_array_equal(arr, seen[1][name], err_msg=name)
