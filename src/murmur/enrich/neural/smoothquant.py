"""SmoothQuant for the int8 e5 path: per-channel activation maxima, measured once on real text.

ONNX Runtime's dynamic int8 MatMul quantizes a product's input with one scale per tensor; e5's
activations have a few outlier channels (the GELU output most), so one scale loses the rest of the
channels' precision. SmoothQuant (Xiao et al., 2023) moves that range into the weights: per input
channel ``s = max|x|^alpha / max|w|^(1 - alpha)``, the input is divided by ``s`` and the weight's
column multiplied by it (``Layer.smooth``). The maxima come from real posts, so they are measured
once and shipped (``assets/models/e5_smoothquant.npz``, 0.2 MB); rebuild them with

    python -m murmur.enrich.neural.smoothquant      # needs ../shared/data; ~1 minute on 2 cores

Calibration text: 40 XLM-T *train* tweets per language and 150 Reddit texts that the parity test
does not use. The file records the digest of the sentiment branch it measured; a different branch
(a retrained head) is left unsmoothed, and the int8 recipe then keeps it float32.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from murmur.enrich.neural.head import MODEL_DIR
from murmur.errors import ModelError

if TYPE_CHECKING:
    from murmur.enrich.neural.model import E5Encoder, Layer, SentimentBranch

log = logging.getLogger(__name__)

STATS_PATH = MODEL_DIR / "e5_smoothquant.npz"
REBUILD = "python -m murmur.enrich.neural.smoothquant"
Stats = Mapping[str, npt.NDArray[np.float32]]


def branch_digest(branch: SentimentBranch | Mapping[str, npt.NDArray[Any]] | None) -> str:
    """A short digest of a sentiment branch's arrays ("" without one); the same for the branch module
    and for the arrays it was built from."""
    if branch is None:
        return ""
    arrays = branch if isinstance(branch, Mapping) else branch.arrays()
    h = hashlib.sha256()
    for name, arr in sorted(arrays.items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return h.hexdigest()[:12]


def _named_layers(encoder: E5Encoder) -> list[tuple[str, Layer]]:
    out: list[tuple[str, Layer]] = [(f"layers.{i}", layer) for i, layer in enumerate(encoder.layers)]  # type: ignore[misc]
    if encoder.branch is not None:
        out += [(f"branch.{i}", layer) for i, layer in enumerate(encoder.branch.layers)]  # type: ignore[misc]
    return out


def calibrate(
    texts: Sequence[str], branch: SentimentBranch | Mapping[str, npt.NDArray[Any]] | None = None
) -> dict[str, npt.NDArray[np.float32]]:
    """Per-channel maxima of |input| of every weight product, over ``texts``, in float32 PyTorch."""
    import torch

    from murmur.enrich.neural.embedder import E5Embedder

    embedder = E5Embedder(backend="torch", device="cpu", dtype=torch.float32, branch=branch)
    layers = _named_layers(embedder.model.encoder)
    for _, layer in layers:
        layer.stats = {}
    with torch.inference_mode():
        for batch in embedder.batches(embedder.windows(texts)):
            embedder.model.forward_all(torch.from_numpy(batch.ids), torch.from_numpy(batch.real))
    out: dict[str, npt.NDArray[np.float32]] = {}
    for name, layer in layers:
        assert layer.stats is not None
        for role, value in layer.stats.items():
            out[f"{name}.{role}"] = value.numpy().astype(np.float32)
        layer.stats = None
    digest = branch_digest(embedder.model.encoder.branch).encode().ljust(12)
    out["branch_digest"] = np.frombuffer(digest, dtype=np.uint8).astype(np.float32)
    return out


def load_stats(path: Path = STATS_PATH) -> dict[str, npt.NDArray[np.float32]]:
    if not path.exists():
        msg = f"SmoothQuant statistics {path} are missing; run `{REBUILD}`"
        raise ModelError(msg)
    with np.load(path) as data:
        return {k: np.asarray(data[k], dtype=np.float32) for k in data.files}


def stats_digest(path: Path = STATS_PATH) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def measured_on(stats: Stats, branch: SentimentBranch | Mapping[str, npt.NDArray[Any]] | None) -> bool:
    """Whether ``stats`` were measured with this sentiment branch."""
    return bytes(stats["branch_digest"].astype(np.uint8)).decode().strip() == branch_digest(branch)


def apply(encoder: E5Encoder, stats: Stats, alpha: float) -> bool:
    """Smooth ``encoder``'s layers in place (``Layer.smooth``); its branch too when ``stats`` were
    measured on that branch. Returns whether the branch was smoothed."""
    import torch

    smooth_branch = encoder.branch is not None and measured_on(stats, encoder.branch)
    for name, layer in _named_layers(encoder):
        if name.startswith("branch.") and not smooth_branch:
            continue
        keys = {role: f"{name}.{role}" for role in ("qkv", "ao", "fi", "fo")}
        missing = [k for k in keys.values() if k not in stats]
        if missing:
            msg = f"SmoothQuant statistics lack {missing[:3]}: rebuild them ({REBUILD})"
            raise ModelError(msg)
        layer.stats = {role: torch.from_numpy(stats[k]) for role, k in keys.items()}
        layer.smooth(alpha)
    if encoder.branch is not None and not smooth_branch:
        log.warning("SmoothQuant statistics were measured on another sentiment branch: it stays float32")
    return smooth_branch


def calibration_texts() -> list[str]:
    """40 XLM-T train tweets per language + Reddit texts 250..399 (the parity test uses 0..198)."""
    from murmur.enrich.neural.samples import reddit_texts, xlmt

    train = xlmt("train")
    return [t for lang in sorted(train) for t in train[lang][0][:40]] + reddit_texts(400)[250:]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=STATS_PATH)
    args = parser.parse_args(argv)
    from murmur.enrich.neural.head import HEAD_PATH, default_head

    branch = default_head().branch if HEAD_PATH.exists() else None
    texts = calibration_texts()
    stats = calibrate(texts, branch)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **stats)  # type: ignore[arg-type]
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB) from {len(texts)} texts")


__all__ = [
    "STATS_PATH",
    "apply",
    "branch_digest",
    "calibrate",
    "load_stats",
    "main",
    "measured_on",
    "stats_digest",
]

if __name__ == "__main__":
    main()
