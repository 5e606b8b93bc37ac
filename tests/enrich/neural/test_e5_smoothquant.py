"""SmoothQuant rescales e5's weights without changing what the layers compute, from statistics that
ship with murmur and name the sentiment branch they were measured on."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from murmur.enrich.neural import smoothquant
from murmur.enrich.neural.e5file import E5File
from murmur.enrich.neural.head import default_head
from murmur.enrich.neural.model import E5Encoder, Layer, SentimentBranch


@pytest.fixture(scope="module")
def weights() -> E5File:
    return E5File()


def first_layer(module: E5Encoder | SentimentBranch) -> Layer:
    layer = module.layers[0]
    assert isinstance(layer, Layer)
    return layer


def test_shipped_statistics_cover_every_layer_and_the_shipped_branch() -> None:
    stats = smoothquant.load_stats()
    for i in range(12):
        assert stats[f"layers.{i}.qkv"].shape == (384,)
        assert stats[f"layers.{i}.fo"].shape == (1536,)
        assert (stats[f"layers.{i}.fi"] > 0).all()
    branch = SentimentBranch.from_arrays(default_head().branch, 12, 1e-12, torch.float32)  # type: ignore[arg-type]
    assert smoothquant.measured_on(stats, branch)
    assert f"branch.{len(branch.layers) - 1}.fo" in stats


def test_smoothing_leaves_the_float32_encoder_unchanged(weights: E5File) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 9, 384)
    real = torch.ones(3, 9, dtype=torch.bool)
    real[1, 6:] = False
    plain = E5Encoder(weights, torch.float32, (11,)).eval()
    smoothed = copy.deepcopy(plain)
    smoothquant.apply(smoothed, smoothquant.load_stats(), 0.8)
    layer, original = first_layer(smoothed), first_layer(plain)
    assert layer.inv_fo is not None
    assert float(layer.inv_fo.max() / layer.inv_fo.min()) > 10  # it really rescaled channels
    assert not torch.equal(layer.fo_w, original.fo_w)
    with torch.inference_mode():
        a, b = plain(x, real), smoothed(x, real)
    cos = torch.nn.functional.cosine_similarity(a[:, -1], b[:, -1], dim=-1)
    assert float(cos.min()) > 0.99999, cos
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=2e-3)


def test_a_branch_it_was_not_measured_on_stays_unsmoothed(weights: E5File) -> None:
    other = SentimentBranch.init_from(weights, 10)
    encoder = E5Encoder(weights, torch.float32, (11,), other).eval()
    before = first_layer(other).fo_w.detach().clone()
    assert not smoothquant.apply(encoder, smoothquant.load_stats(), 0.8)
    assert torch.equal(first_layer(other).fo_w, before)
    assert first_layer(encoder).inv_fo is not None


def test_calibration_measures_maxima_per_channel() -> None:
    stats = smoothquant.calibrate(["a short post", "ein etwas längerer Beitrag über das Wetter 🌧️"])
    assert stats["layers.0.fi"].shape == (384,)
    assert stats["layers.11.fo"].shape == (1536,)
    assert not smoothquant.measured_on(stats, SentimentBranch.init_from(E5File(), 11))
    assert (stats["layers.3.ao"] >= 0).all()
    assert float(stats["layers.3.ao"].max()) > 0
