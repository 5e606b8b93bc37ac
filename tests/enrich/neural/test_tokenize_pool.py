"""Tokenizing in worker processes (what feeds a GPU) gives exactly the ids of the calling thread."""

from __future__ import annotations

import pickle

import numpy as np
import psutil
import pytest

from murmur.enrich.neural.e5file import e5_weights_path
from murmur.enrich.neural.embedder import E5Embedder, Windows
from murmur.enrich.neural.tokenize_pool import POOL_MIN_TEXTS, TokenizerPool, default_processes

FIELDS = ("flat", "start", "size", "text_of", "weight")


def workers() -> set[psutil.Process]:
    """This process's spawned workers (not multiprocessing's resource tracker)."""
    return {p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())}


def same_windows(a: Windows, b: Windows) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


@pytest.mark.usefixtures("need_shared")
def test_a_pool_of_processes_tokenizes_as_the_calling_thread(embedder: E5Embedder) -> None:
    from murmur.enrich.neural.samples import mixed_posts

    texts = mixed_posts(POOL_MIN_TEXTS, 60)  # tweets in 8 languages and long Reddit posts (several windows)
    texts += ["", "🔥", "word " * 700]
    pooled = E5Embedder(backend="onnx", tokenize_processes=2)
    try:
        before = workers()
        ours = pooled.windows(texts)
        assert pooled._pool is not None, "a batch this large goes to the pool"
        started = workers() - before
        assert len(started) == 2
        assert same_windows(ours, embedder.windows(texts))
        assert int(ours.text_of.max()) == len(texts) - 1
        assert len(ours.size) > len(texts), "the long posts have several windows"
        # a small batch stays in this thread and gives the same as well
        assert same_windows(pooled.windows(texts[:10]), embedder.windows(texts[:10]))
    finally:
        pooled.close()
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in started)
    assert pooled._pool is None


def test_the_tokenizing_processes_travel_with_a_pickled_embedder() -> None:
    copy = pickle.loads(pickle.dumps(E5Embedder(backend="onnx", tokenize_processes=3)))
    assert copy.tokenize_processes == 3
    assert E5Embedder(backend="onnx").tokenize_processes == 0, "on a CPU nothing is spawned by default"


def test_default_processes_leave_two_cores_on_a_gpu_and_none_on_a_cpu() -> None:
    assert default_processes(on_gpu=False) == 0
    cores = len(psutil.Process().cpu_affinity() or [])
    assert default_processes(on_gpu=True) == max(0, min(16, cores - 2))


def test_an_empty_batch_and_a_pool_without_processes() -> None:
    with pytest.raises(ValueError, match="at least 1 process"):
        TokenizerPool(0, "unused", "query: ")
    pool = TokenizerPool(1, e5_weights_path(), "query: ")
    try:
        flat, counts = pool.flat_ids([])
        assert flat.shape == (0,)
        assert counts.shape == (0,)
    finally:
        pool.close()
