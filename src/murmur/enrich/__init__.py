"""Enrichment: components that read some fields of a post and add others, run as a ``Pipeline``.

The built-in components register exactly like a plugin would, from ``register_builtins()``:

======================================  ==================================  =======================
component                               assigns                             requires
======================================  ==================================  =======================
``murmur.lang.cld2lingua@2``            ``lang``, ``lang_conf``
``murmur.sentiment.lexical@1``          ``sentiment``, ``sentiment_score``,  ``lang``
                                        ``sentiment_model``
``murmur.terms@1``                      ``terms``                            ``lang``
``murmur.neardup.simhash@1``            ``simhash``, ``minhash``
``murmur.neardup.cluster@2``            ``dup_cluster``                      ``simhash``, ``minhash``
``murmur.neardup.cluster@1``            ``dup_cluster``                      ``simhash``
======================================  ==================================  =======================

``firehose_pipeline()`` is the CPU tier (≥ 10,000 posts/s on 2 cores, ``bench/enrich_firehose.py``);
the neural tier (``murmur.enrich.neural``) adds embeddings and neural sentiment.
"""

from __future__ import annotations

from murmur.enrich.base import COMPONENTS, Component, Pipeline
from murmur.enrich.langid import Cld2LinguaLanguage
from murmur.enrich.lexical import LexicalSentiment
from murmur.enrich.neardup import NearDupClusters, SimHashClusters, SimHashSignature
from murmur.enrich.terms import Terms

BUILTIN_COMPONENTS: tuple[type[Component], ...] = (
    Cld2LinguaLanguage,
    LexicalSentiment,
    Terms,
    SimHashSignature,
    NearDupClusters,
    SimHashClusters,
)

FIREHOSE: tuple[str, ...] = (
    "murmur.lang.cld2lingua@2",
    "murmur.sentiment.lexical@1",
    "murmur.terms@1",
    "murmur.neardup.simhash@1",
    "murmur.neardup.cluster@2",
)
"""The firehose tier's components, in pipeline order."""


def register_builtins() -> None:
    """Register the built-in components (idempotent)."""
    known = set(COMPONENTS.names())
    for cls in BUILTIN_COMPONENTS:
        if cls.name not in known:
            COMPONENTS.register(cls.name, cls)


def firehose_pipeline() -> Pipeline:
    """Language → lexical sentiment → terms → SimHash and MinHash → near-duplicate clusters, built
    from the registry."""
    register_builtins()
    return Pipeline([COMPONENTS.get(name)() for name in FIREHOSE])


__all__ = ["BUILTIN_COMPONENTS", "FIREHOSE", "firehose_pipeline", "register_builtins"]
