"""langid.py's classifier, run on a whole batch of texts at once.

``py3langid`` walks a byte automaton in a Python loop, one text at a time (~0.15 ms a tweet). Here
the same automaton and the same naive-Bayes tables (read from the installed, pinned ``py3langid``
model) are applied to many texts in lock step: step ``t`` advances every text still longer than
``t`` bytes with one vectorized lookup. The probabilities equal ``LanguageIdentifier._decide``'s
(``tests/enrich/test_langid.py`` checks it), for texts up to ``max_bytes`` (longer ones are cut).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse  # type: ignore[import-untyped]  # scipy ships no type information

from murmur.cache import file_digest, mapped_arrays
from murmur.errors import ModelError

F32 = npt.NDArray[np.float32]


class BatchLangid:
    """Vectorized langid.py: ``proba(texts)`` → (n, classes) probabilities, ``classes`` labels."""

    def __init__(self, max_bytes: int = 512, *, cache_dir: Path | None = None) -> None:
        tables = load_tables(cache_dir)
        self.max_bytes = max_bytes
        self._nm = tables["nextmove"]
        self._rowbase = tables["rowbase"]
        self._out = tables["output"]
        self._ptc = tables["ptc"]
        self._pc = tables["pc"]
        self.classes: list[str] = [str(c) for c in tables["classes"]]
        self._alias: list[tuple[int, int]] = [(int(a), int(b)) for a, b in tables["alias"]]
        self._n_features = self._ptc.shape[0]

    @staticmethod
    def encode(text: str) -> bytes:
        """langid.py's own input normalization: lower case if all upper, NFC, UTF-8."""
        if text.isupper():
            text = text.lower()
        return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")

    def proba(self, texts: Sequence[str]) -> F32:
        n = len(texts)
        out = np.zeros((n, len(self.classes)), dtype=np.float32)
        if n == 0:
            return out
        data = [self.encode(t)[: self.max_bytes] for t in texts]
        lengths = np.fromiter(map(len, data), dtype=np.int64, count=n)
        # longest first, so that the texts still walking at step t are the first ``alive`` columns
        order = np.argsort(-lengths, kind="stable")
        sorted_len = lengths[order].tolist()
        width = max(sorted_len[0], 1)
        # text bytes[t, j]: byte t of the j-th longest text (step t reads one contiguous row)
        padded = b"".join(data[i].ljust(width, b"\0") for i in order.tolist())
        text_bytes = np.frombuffer(padded, dtype=np.uint8).reshape(n, width).T.copy()
        # the walk: step t advances the texts longer than t bytes (the first ``alive`` columns) and
        # appends their new states to ``visited``, step after step
        visited = np.empty(sum(sorted_len), dtype=np.int32)
        alive_at = np.empty(width, dtype=np.int64)
        state = np.zeros(n, dtype=np.int32)
        alive, at = n, 0
        for t in range(width):
            while alive and sorted_len[alive - 1] <= t:
                alive -= 1
            state[:alive] = self._nm[self._rowbase[state[:alive]] + text_bytes[t, :alive]]
            visited[at : at + alive] = state[:alive]
            alive_at[t] = alive
            at += alive
        column = np.arange(at) - np.repeat(np.cumsum(alive_at) - alive_at, alive_at)
        feat = self._out[visited]
        emitted = feat >= 0
        if emitted.any():
            # one sparse (texts x features) @ dense (features x classes) product for the batch; the
            # matrix sums a text's repeated features into counts (and sorts its features)
            doc, feat = order[column[emitted]], feat[emitted]
            x = scipy.sparse.csr_matrix(
                (np.ones(len(doc), dtype=np.float32), (doc, feat)), shape=(n, self._n_features)
            )
            x.data = np.log1p(x.data)
            has = np.zeros(n, dtype=bool)
            has[doc] = True
            out[has] = (x @ self._ptc)[has] + self._pc
        # norm_probs: temperature sqrt(bytes), softmax; a text without features stays all-zero → uniform
        scale = 1.0 / np.sqrt(np.maximum(lengths, 1)).astype(np.float32)
        out *= scale[:, None]
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        for i, j in self._alias:
            out[:, i] += out[:, j]
            out[:, j] = 0.0
        return out

    def top(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` most likely labels and their probabilities, per text."""
        p = self.proba(texts)
        idx = np.argsort(-p, axis=1, kind="stable")[:, :k]
        return [[(self.classes[j], float(p[r, j])) for j in row] for r, row in enumerate(idx.tolist())]


@cache
def batch_langid() -> BatchLangid:
    return BatchLangid()


_TABLES_FORMAT = "1"  # bump when the tables below change shape or meaning


def _py3langid() -> tuple[Path, type[Any]]:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as e:  # pragma: no cover - a pinned dependency
        msg = f"language identification needs py3langid==0.4.0 ({e}): pip install py3langid==0.4.0"
        raise ModelError(msg) from e
    path = Path(MODEL_FILE)
    if not path.is_absolute():
        from py3langid.langid import MODEL_DIR

        path = Path(MODEL_DIR) / path
    return path, LanguageIdentifier


def build_tables() -> dict[str, npt.NDArray[Any]]:
    """langid.py's automaton and naive-Bayes tables as arrays, from the installed model (its
    LZMA-compressed file: ~0.5 s to unpack and convert)."""
    path, identifier = _py3langid()
    ident = identifier.from_model_file(path, norm_probs=True)
    return {
        # int32: half the memory of int64 (the move table is 9.8M entries), fewer cache misses
        "nextmove": np.asarray(ident.tk_nextmove, dtype=np.int32),
        "rowbase": np.asarray(ident._rowbase, dtype=np.int32),  # internals of the pinned py3langid 0.4.0
        "output": np.asarray(ident.tk_output, dtype=np.int32),
        "ptc": np.asarray(ident.nb_ptc, dtype=np.float32),
        "pc": np.asarray(ident.nb_pc, dtype=np.float32),
        "classes": np.asarray(list(ident.nb_classes), dtype=np.str_),
        "alias": np.asarray(list(ident._alias_pairs), dtype=np.int64).reshape(-1, 2),
    }


def load_tables(cache_dir: Path | None = None) -> dict[str, npt.NDArray[Any]]:
    """``build_tables()``, kept unpacked in murmur's cache folder (``cache_dir``, default
    ``murmur.cache.cache_root()``) under the model file's SHA-256 and read back memory-mapped
    (``murmur.cache.mapped_arrays``): a process that starts then maps them in ~1 ms instead of
    unpacking them (~0.5 s) or reading a copy (~0.3 s), and ``murmur run``'s workers share one copy
    of the ~97 MB."""
    path, _ = _py3langid()
    return mapped_arrays("langid-tables", file_digest(path, _TABLES_FORMAT), build_tables, cache_dir)
