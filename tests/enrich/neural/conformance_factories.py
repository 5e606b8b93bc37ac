"""The neural tier's components, built for the one conformance suite (``tests/enrich/conformance.py``)
as a user would build them: each on the default e5 path (``auto``: int8 ONNX on an x86-64 CPU, torch
bf16 on a GPU) and on the float32 path (``backend="onnx"``), the model-hub sentiment on a tiny model
built here (nothing downloaded), by its directory and by a model object with non-default options.

Loaded models are shared: the default e5 embedder is process-wide, the float32 one is built once.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from murmur.enrich.base import Component
from murmur.enrich.lexical import LexicalSentiment
from murmur.enrich.neural.components import (
    BranchNotes,
    E5Embed,
    E5Sentiment,
    NeuralSentimentModel,
    neural_components,
)
from murmur.enrich.neural.embedder import E5Embedder
from murmur.enrich.neural.head import default_head
from murmur.enrich.neural.tiered import FixedCapacity, TieredEnricher
from murmur.enrich.transformer import TransformerSentiment, TransformerSentimentModel
from tests.enrich.conformance import T0, Factory
from tests.enrich.neural.test_transformer_backend import build_tiny

FLOAT32 = "[onnx]"
"""Suffix of the float32 variants' names."""
NOT_BATCH_INVARIANT = frozenset({"murmur.embed.e5@1", "murmur.sentiment.e5head@1", "murmur.tiered.e5@1"})
"""Variants on the default e5 path, whose results depend a little on the batch by design: int8 ONNX
quantizes each product's input with one scale per batch (docs/enrichment.md, "int8 results depend a
little on the batch"; bf16 on a GPU likewise). Their float32 variants run the batch check instead."""
FLOAT32_CHECKS = frozenset({"check_batch_equals_one_by_one", "check_pickle"})
"""What the float32 variants run: the batch check, and the pickle check (a caller's embedder must
survive pickling). The rest would repeat the default variants' checks (hard text alone is ~10 s a
variant on 2 cores: 20,000-token posts)."""


def runs(name: str, check: str) -> bool:
    """Whether the variant ``name`` runs the check named ``check``."""
    if name.endswith(FLOAT32):
        return check in FLOAT32_CHECKS
    return not (name in NOT_BATCH_INVARIANT and check == "check_batch_equals_one_by_one")


def at_t0() -> datetime:
    """The wall time of the suite's posts (module level: the tiered enricher must pickle)."""
    return T0


def frozen_clock() -> float:
    """A monotonic clock that stands still: the tiered planner never runs out of time."""
    return 0.0


@cache
def float32_embedder() -> E5Embedder:
    return E5Embedder(backend="onnx", branch=default_head().branch)


@cache
def float32_model() -> NeuralSentimentModel:
    return NeuralSentimentModel(float32_embedder())


def float32_components() -> list[Component]:
    notes = BranchNotes()  # as neural_components() does: one forward pass for both steps
    return [E5Embed(float32_embedder(), notes), E5Sentiment(float32_model(), notes)]


def tiered(neural: list[Component]) -> TieredEnricher:
    """Within its budget: the posts are as old as the suite's clock says, and capacity is ample, so
    every post goes to the neural tier (a post the firehose tier labels has no embedding by design,
    until the backfill)."""
    return TieredEnricher(
        neural, LexicalSentiment(), capacity=FixedCapacity(1e9), clock=frozen_clock, now=at_t0
    )


def neural_factories(workdir: Path) -> dict[str, Factory]:
    tiny = build_tiny(workdir / "tiny", {0: "negative", 1: "neutral", 2: "positive"})
    onnx_cache = workdir / "cache"

    def transformer_by_path() -> Component:
        return TransformerSentiment(tiny, backend="onnx", cache_dir=onnx_cache)

    def transformer_by_model() -> Component:
        # options that change results: a pickled copy must keep them
        model = TransformerSentimentModel(tiny, backend="onnx", cache_dir=onnx_cache, max_length=12)
        return TransformerSentiment(model)

    return {
        "murmur.embed.e5@1": E5Embed,
        f"murmur.embed.e5@1{FLOAT32}": lambda: E5Embed(float32_embedder()),
        "murmur.sentiment.e5head@1": E5Sentiment,
        f"murmur.sentiment.e5head@1{FLOAT32}": lambda: E5Sentiment(float32_model()),
        "murmur.tiered.e5@1": lambda: tiered(neural_components()),
        f"murmur.tiered.e5@1{FLOAT32}": lambda: tiered(float32_components()),
        "murmur.sentiment.transformer@1": transformer_by_path,
        "murmur.sentiment.transformer@1[model]": transformer_by_model,
    }


NAMES: tuple[str, ...] = (
    "murmur.embed.e5@1",
    f"murmur.embed.e5@1{FLOAT32}",
    "murmur.sentiment.e5head@1",
    f"murmur.sentiment.e5head@1{FLOAT32}",
    "murmur.tiered.e5@1",
    f"murmur.tiered.e5@1{FLOAT32}",
    "murmur.sentiment.transformer@1",
    "murmur.sentiment.transformer@1[model]",
)
"""The keys of ``neural_factories``, known before any model is built (test ids)."""
