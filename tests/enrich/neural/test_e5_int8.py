"""The int8 CPU path (SmoothQuant + ONNX Runtime dynamic quantization): quantized once, cached under a
key that names the recipe and the statistics, float32 only where the recipe says, close to float32;
and the float32 graph's attention is fused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import onnx
import pytest

from murmur.enrich.neural.components import BACKEND_ENV, backend_override
from murmur.enrich.neural.embedder import E5Embedder, cpu_has_avx2
from murmur.enrich.neural.onnx_backend import DEFAULT_INT8, Int8Recipe, OnnxEncoder, weight_matmuls
from murmur.enrich.neural.samples import mixed_posts
from murmur.enrich.neural.smoothquant import stats_digest
from murmur.errors import ModelError


@pytest.fixture(scope="module")
def fp32() -> E5Embedder:
    """ONNX Runtime float32, from the user cache (exported there once)."""
    return E5Embedder(backend="onnx")


def seed_cache(fp32: E5Embedder, cache: Path) -> Path:
    """``cache`` holding the float32 graph only (a link: no export in the test)."""
    target = cache / fp32.onnx.fp32_path.name
    try:
        os.link(fp32.onnx.fp32_path, target)
    except OSError:
        shutil.copyfile(fp32.onnx.fp32_path, target)
    return target


def test_recipe_rules_and_keys() -> None:
    r = Int8Recipe(keep_fp32=("ffn_out", "ffn_in@6-11"))
    assert r.keeps("ffn_out", 0, False)
    assert r.keeps("ffn_out", None, True)
    assert r.keeps("ffn_in", 6, False)
    assert r.keeps("ffn_in", 11, False)
    assert not r.keeps("ffn_in", 5, False)
    assert not r.keeps("ffn_in", 8, True)
    assert not r.keeps("qkv", 11, False)
    whole_branch = Int8Recipe(keep_fp32=("branch",))
    assert whole_branch.keeps("qkv", 0, True)
    assert not whole_branch.keeps("qkv", 0, False)
    keys = {
        r.key,
        Int8Recipe(keep_fp32=("ffn_out",)).key,
        Int8Recipe(keep_fp32=("ffn_out", "ffn_in@6-11"), per_channel=False).key,
        Int8Recipe(keep_fp32=("ffn_out", "ffn_in@6-11"), reduce_range=True).key,
        Int8Recipe(keep_fp32=("ffn_out", "ffn_in@6-11"), weight_type="uint8").key,
    }
    assert len(keys) == 5
    assert Int8Recipe(keep_fp32=("ffn_in@6-11", "ffn_out")).key == r.key
    with pytest.raises(ValueError, match="keep_fp32"):
        Int8Recipe(keep_fp32=("ffn_outt",))


def test_auto_picks_int8_where_the_cpu_has_int8_dot_products(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without them (AVX2 alone, AVX-512 without VNNI) int8 dropped the sentiment scores: float32."""
    from murmur.enrich.neural import embedder as mod

    cases = {
        " avx2 avx512_vnni ": "onnx-int8",
        " avx2 avx_vnni ": "onnx-int8",
        " avx2 fma ": "onnx",
        " avx2 avx512f avx512bw ": "onnx",
        " fpu sse4_2 ": "onnx",
        " fp asimd asimddp ": "onnx",
        " avx2 avx512_vnni avx512_bf16 ": "onnx-int8",
        " avx2 amx_bf16 amx_int8 ": "onnx-int8",
    }
    for flags, backend in cases.items():
        monkeypatch.setattr(mod, "_cpu_flags", lambda flags=flags: flags)
        assert mod.auto_cpu_backend() == backend, flags


def test_the_cpu_summary_names_what_the_backend_was_chosen_by(monkeypatch: pytest.MonkeyPatch) -> None:
    from murmur.enrich.neural import embedder as mod

    info = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_2 avx2 fma\n"
    monkeypatch.setattr(mod, "_cpu_flags", lambda: info)
    summary = mod.cpu_summary()
    assert summary.startswith(f"AMD EPYC 7B13, {os.cpu_count()} cores (")
    assert "avx2 yes, avx512 no, vnni no, bf16 no; e5 auto backend: onnx)" in summary
    monkeypatch.setattr(mod, "_cpu_flags", lambda: "flags\t: fp asimd asimddp\n")
    assert mod.cpu_summary().startswith("unknown, ")
    assert mod.cpu_summary().endswith("e5 auto backend: onnx)")


def test_backend_names_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="unknown backend"):
        E5Embedder(backend="int8")  # type: ignore[arg-type]
    monkeypatch.setenv(BACKEND_ENV, "onnx")
    assert backend_override() == "onnx"
    monkeypatch.setenv(BACKEND_ENV, "onnx-int8")
    assert backend_override() == "onnx-int8"
    monkeypatch.setenv(BACKEND_ENV, "fast")
    with pytest.raises(ModelError, match=BACKEND_ENV):
        backend_override()
    monkeypatch.delenv(BACKEND_ENV)
    assert backend_override() == "auto"


@pytest.mark.usefixtures("need_shared")
@pytest.mark.skipif(not cpu_has_avx2(), reason="int8 accuracy is measured on x86-64 with AVX2")
def test_default_int8_is_smoothed_fused_all_int8_cached_and_close_to_fp32(
    fp32: E5Embedder, tmp_path: Path
) -> None:
    q = E5Embedder(backend="onnx-int8", cache_dir=tmp_path)
    assert q.backend == "onnx-int8"
    assert "int8" in q.description
    assert "SmoothQuant" in q.description
    assert q.onnx.path.parent == tmp_path
    assert DEFAULT_INT8.key in q.onnx.path.name
    assert f"-sq{stats_digest()}" in q.onnx.path.name
    # the smoothed float32 graph it was quantized from is gone; the plain float32 one was never needed
    assert [p.name for p in tmp_path.iterdir()] == [q.onnx.path.name]

    # every weight product is int8: the 12 fused attentions (Q/K/V), attention-out, FFN-in, FFN-out
    graph = onnx.load(str(q.onnx.path), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QAttention") == 12
    assert ops.count("DynamicQuantizeMatMul") + ops.count("MatMulInteger") == 3 * 12
    consts = {init.name for init in graph.initializer}
    assert not [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in consts]
    assert "Softmax" not in ops

    # a second load reuses the quantized file
    made = q.onnx.path.stat().st_mtime_ns
    again = OnnxEncoder(q.weights, cache_dir=tmp_path, pool=q.pool, int8=DEFAULT_INT8)
    assert again.path == q.onnx.path
    assert q.onnx.path.stat().st_mtime_ns == made

    texts = mixed_posts(30, 6)
    ours, ref = q.encode(texts), fp32.encode(texts)
    cos = (ours * ref).sum(axis=1)
    assert cos.mean() >= 0.998, cos.mean()
    assert cos.min() >= 0.99, cos.min()


@pytest.mark.usefixtures("need_shared")
def test_an_unsmoothed_recipe_quantizes_the_cached_fp32_graph_and_keeps_its_fp32_products(
    fp32: E5Embedder, tmp_path: Path
) -> None:
    source = seed_cache(fp32, tmp_path)
    exported = source.stat().st_mtime_ns
    recipe = Int8Recipe(keep_fp32=("ffn_out", "ffn_in@0-5"), smooth_alpha=0)
    q = E5Embedder(backend="onnx-int8", cache_dir=tmp_path, int8=recipe)
    assert q.onnx.fp32_path == source
    assert source.stat().st_mtime_ns == exported
    assert recipe.key in q.onnx.path.name
    assert DEFAULT_INT8.key not in q.onnx.path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, q.onnx.path.name])
    cfg = fp32.config
    kept = {
        name
        for name, role, layer, br in weight_matmuls(source, cfg.hidden, cfg.ffn)
        if recipe.keeps(role, layer, br)
    }
    assert len(kept) == 12 + 6  # FFN-out of the 12 layers, FFN-in of 6 of them
    graph = onnx.load(str(q.onnx.path), load_external_data=False).graph
    consts = {init.name for init in graph.initializer}
    assert {n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in consts} == kept
    assert sum(n.op_type == "QAttention" for n in graph.node) == 12


def test_the_float32_graph_has_fused_attention(fp32: E5Embedder) -> None:
    graph = onnx.load(str(fp32.onnx.fp32_path), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Attention") == 12
    assert "Softmax" not in ops
    assert "Where" not in ops
