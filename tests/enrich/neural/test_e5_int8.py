"""The int8 CPU path (ONNX Runtime dynamic quantization): quantized once, cached beside the float32
graph under a key that names the recipe, float32 where the recipe says, and close to float32."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import onnx
import pytest

from murmur.enrich.neural.components import BACKEND_ENV, backend_override
from murmur.enrich.neural.embedder import E5Embedder
from murmur.enrich.neural.onnx_backend import DEFAULT_INT8, Int8Recipe, OnnxEncoder, weight_matmuls
from murmur.enrich.neural.samples import mixed_posts
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
def test_int8_is_cached_beside_fp32_keeps_its_fp32_matmuls_and_matches_fp32(
    fp32: E5Embedder, tmp_path: Path
) -> None:
    source = seed_cache(fp32, tmp_path)
    exported = source.stat().st_mtime_ns
    q = E5Embedder(backend="onnx-int8", cache_dir=tmp_path)
    assert q.backend == "onnx-int8"
    assert "int8" in q.description
    assert q.onnx.fp32_path == source
    assert source.stat().st_mtime_ns == exported
    assert q.onnx.path.parent == tmp_path
    assert q.onnx.path != source
    assert DEFAULT_INT8.key in q.onnx.path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, q.onnx.path.name])

    # the recipe's MatMuls are still float32 MatMuls with float weights; the others are int8
    cfg = fp32.config
    kept = {
        name
        for name, role, layer, br in weight_matmuls(source, cfg.hidden, cfg.ffn)
        if DEFAULT_INT8.keeps(role, layer, br)
    }
    assert len(kept) == 12 + 6  # FFN-out of the 12 layers, FFN-in of 6 of them
    graph = onnx.load(str(q.onnx.path), load_external_data=False).graph
    consts = {init.name for init in graph.initializer}
    float_matmuls = {n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in consts}
    assert float_matmuls == kept
    assert sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node) == 3 * 12 - 6

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
def test_another_recipe_is_another_file(fp32: E5Embedder, tmp_path: Path) -> None:
    seed_cache(fp32, tmp_path)
    q = E5Embedder(backend="onnx-int8", cache_dir=tmp_path, int8=Int8Recipe(keep_fp32=()))
    assert q.onnx.path.name != q.onnx.fp32_path.name
    assert Int8Recipe(keep_fp32=()).key in q.onnx.path.name
    assert DEFAULT_INT8.key not in q.onnx.path.name
    graph = onnx.load(str(q.onnx.path), load_external_data=False).graph
    assert (
        sum(n.op_type == "MatMul" and n.input[1] in {i.name for i in graph.initializer} for n in graph.node)
        == 0
    )
