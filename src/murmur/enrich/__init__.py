"""Enrichment: components that read some fields of a post and add others, run as a ``Pipeline``.

The built-in components register exactly like a plugin would, from ``register_builtins()``:

======================================  ==================================  =======================
component                               assigns                             requires
======================================  ==================================  =======================
``murmur.lang.cld2lingua@2``            ``lang``, ``lang_conf``
``murmur.sentiment.lexical@1``          ``sentiment``, ``sentiment_score``,  ``lang``
                                        ``sentiment_model``
``murmur.terms@1``                      ``terms``                            ``lang``
``murmur.neardup.simhash@2``            ``simhash``, ``minhash`` (counted)
``murmur.neardup.cluster@3``            ``dup_cluster``                      ``simhash``, ``minhash``
``murmur.neardup.simhash@1``            ``simhash``, ``minhash``
``murmur.neardup.cluster@2``            ``dup_cluster``                      ``simhash``, ``minhash``
``murmur.neardup.cluster@1``            ``dup_cluster``                      ``simhash``
======================================  ==================================  =======================

``firehose_pipeline()`` is the CPU tier (≥ 10,000 posts/s on 2 cores, ``bench/enrich_firehose.py``);
the neural tier (``murmur.enrich.neural``) adds embeddings and neural sentiment.
"""

from __future__ import annotations

from collections.abc import Sequence

from murmur.enrich.base import COMPONENTS, Component, Pipeline
from murmur.enrich.langid import Cld2LinguaLanguage
from murmur.enrich.lexical import LexicalSentiment
from murmur.enrich.neardup import (
    CountedSignature,
    NearDupClusters,
    SimHashClusters,
    SimHashSignature,
    TieredNearDupClusters,
)
from murmur.enrich.terms import Terms

BUILTIN_COMPONENTS: tuple[type[Component], ...] = (
    Cld2LinguaLanguage,
    LexicalSentiment,
    Terms,
    CountedSignature,  # before simhash@1: what a component that needs ``minhash`` is given first
    TieredNearDupClusters,
    SimHashSignature,
    NearDupClusters,
    SimHashClusters,
)

FIREHOSE: tuple[str, ...] = (
    "murmur.lang.cld2lingua@2",
    "murmur.sentiment.lexical@1",
    "murmur.terms@1",
    "murmur.neardup.simhash@2",
    "murmur.neardup.cluster@3",
)
"""The firehose tier's components, in pipeline order."""


def register_builtins() -> None:
    """Register the built-in components (idempotent)."""
    known = set(COMPONENTS.names())
    for cls in BUILTIN_COMPONENTS:
        if cls.name not in known:
            COMPONENTS.register(cls.name, cls)


def firehose_pipeline(*, neardup_capacity: int | None = None) -> Pipeline:
    """Language → lexical sentiment → terms → SimHash and MinHash → near-duplicate clusters, built
    from the registry. ``neardup_capacity``: signatures the near-duplicate index holds (default
    ``NearDupClusters``', 1,000,000)."""
    register_builtins()
    return components_pipeline(FIREHOSE, neardup_capacity=neardup_capacity)


def components_pipeline(names: Sequence[str], *, neardup_capacity: int | None = None) -> Pipeline:
    """The registered components ``names``, in order; a near-duplicate index among them holds
    ``neardup_capacity`` signatures (unset: the component's default)."""
    out: list[Component] = []
    for name in names:
        cls = COMPONENTS.get(name)
        if neardup_capacity is not None and issubclass(
            cls, (TieredNearDupClusters, NearDupClusters, SimHashClusters)
        ):
            out.append(cls(capacity=neardup_capacity))
        else:
            out.append(cls())
    return Pipeline(out)


__all__ = ["BUILTIN_COMPONENTS", "FIREHOSE", "components_pipeline", "firehose_pipeline", "register_builtins"]
