"""Every registered enrichment component through the one conformance suite (``conformance.py``).

The built-in components come from ``murmur.enrich.register_builtins()``. Another tier adds its
components to ``FACTORIES`` (a small test model where the real one is slow to load), and they run
through the same checks.
"""

from __future__ import annotations

import pytest

from murmur.enrich import firehose_pipeline, register_builtins
from murmur.enrich.base import COMPONENTS, Pipeline
from murmur.enrich.langid import Cld2LinguaLanguage
from murmur.enrich.lexical import LexicalSentiment
from murmur.errors import PipelineError
from tests.enrich.conformance import CHECKS, Factory, make_posts

register_builtins()
FACTORIES: dict[str, Factory] = {name: COMPONENTS.get(name) for name in COMPONENTS.names()}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_component_conforms(name: str, check: object) -> None:
    assert callable(check)
    check(FACTORIES[name])


def test_every_builtin_is_checked() -> None:
    for name in ("murmur.lang.cld2lingua@2", "murmur.sentiment.lexical@1", "murmur.terms@1"):
        assert name in FACTORIES
    assert "murmur.neardup.simhash@1" in FACTORIES


def test_sentiment_before_language_is_rejected_naming_both() -> None:
    with pytest.raises(PipelineError) as err:
        Pipeline([LexicalSentiment(), Cld2LinguaLanguage()])
    msg = str(err.value)
    assert "murmur.sentiment.lexical@1" in msg
    assert "murmur.lang.cld2lingua@2" in msg
    assert "lang" in msg


def test_firehose_pipeline_enriches_every_field() -> None:
    pipe = firehose_pipeline()
    posts = make_posts(
        ["Great game tonight! #football https://example.com", "Quel désastre, je suis furieux"]
    )
    posts[0].domains = ["example.com"]
    pipe.process(posts)
    for p in posts:
        assert p.lang
        assert p.sentiment
        assert p.sentiment_model == "murmur.sentiment.lexical@1"
        assert p.terms is not None
        assert p.simhash is not None
        assert p.dup_cluster is not None
    assert posts[0].lang == "en"
    assert posts[1].lang == "fr"
    assert "#football" in (posts[0].terms or [])
    assert "example.com" in (posts[0].terms or [])
    assert list(pipe.timings) == [c.name for c in pipe.components]
