"""Tokenizing in worker processes: what keeps a GPU fed.

On a GPU, multilingual-e5-small embeds on the order of 100,000 tweets a second, while one Python
thread tokenizes ~6,000 tweets a second whose words it has not seen (~40,000 when every word is in
its cache; measured on an AVX2 EPYC core). So where ``E5Embedder`` runs on CUDA it hands each chunk's
tokenization to a pool of processes (``tokenize_processes``), each with its own ``E5Tokenizer`` built
from the same weights file: the ids are the same as in the calling thread, in the same order.

The pool starts on first use (spawned, never forked: the parent may hold a CUDA context), and each
worker needs ~1-2 s and ~150 MB to build its tokenizer. Results travel back as two int32 arrays a
slice (flat ids and their counts), not as lists of ints, which would cost more to pickle than to
tokenize. A batch smaller than ``POOL_MIN_TEXTS`` is tokenized in the calling thread.
"""

from __future__ import annotations

import multiprocessing
import os
import weakref
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import chain
from pathlib import Path

import numpy as np
import numpy.typing as npt

from murmur.enrich.neural.e5file import E5File
from murmur.enrich.neural.tokenizer import E5Tokenizer

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

POOL_MIN_TEXTS = 2048
"""Below this many texts the pool's hand-over costs more than it saves."""
SLICES_PER_PROCESS = 4
"""A chunk is cut into this many slices per process, so that a slow slice (long posts) does not leave
the others idle."""


def default_processes(on_gpu: bool) -> int:
    """Tokenizing processes by default: on a GPU all cores but two (at most 16); on a CPU none (there
    the runtime's worker processes already share the cores, and the model, not the tokenizer, is the
    bound)."""
    if not on_gpu:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(16, cores - 2))


def flat_ids(tokenizer: E5Tokenizer, texts: Sequence[str]) -> tuple[I64, I64]:
    """Every text's content ids, concatenated, and how many each text has."""
    content = tokenizer.encode(texts)
    n = len(content)
    counts = np.fromiter(map(len, content), dtype=np.int64, count=n)
    flat = np.fromiter(chain.from_iterable(content), dtype=np.int64, count=int(counts.sum()))
    return flat, counts


_worker_tokenizer: E5Tokenizer | None = None


def _start_worker(weights_path: str, prefix: str) -> None:
    global _worker_tokenizer  # one tokenizer per worker process, built once
    _worker_tokenizer = E5Tokenizer(E5File(weights_path), prefix=prefix)


def _tokenize_slice(texts: list[str]) -> tuple[I32, I32]:
    assert _worker_tokenizer is not None, "the pool's initializer builds the tokenizer"
    flat, counts = flat_ids(_worker_tokenizer, texts)
    return flat.astype(np.int32), counts.astype(np.int32)


class TokenizerPool:
    """``processes`` worker processes, each tokenizing as ``E5Tokenizer(E5File(weights_path), prefix)``."""

    def __init__(self, processes: int, weights_path: str | Path, prefix: str) -> None:
        if processes < 1:
            msg = f"a tokenizer pool needs at least 1 process, got {processes}"
            raise ValueError(msg)
        self.processes = processes
        self._executor = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(str(weights_path), prefix),
        )
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=True, cancel_futures=True)

    def flat_ids(self, texts: Sequence[str]) -> tuple[I64, I64]:
        """As the module function ``flat_ids``, the work shared among the processes."""
        items = list(texts)
        n = len(items)
        step = max(1, -(-n // (self.processes * SLICES_PER_PROCESS)))
        parts = list(self._executor.map(_tokenize_slice, [items[a : a + step] for a in range(0, n, step)]))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        flat = np.concatenate([f for f, _ in parts]).astype(np.int64)
        counts = np.concatenate([c for _, c in parts]).astype(np.int64)
        return flat, counts

    def close(self) -> None:
        """Stops the processes (also when the pool is garbage-collected, or at exit)."""
        self._finalizer()
