"""Every registered enrichment component through the one conformance suite (``conformance.py``).

The firehose tier's components come from ``murmur.enrich.register_builtins()`` and are built without
arguments (``FACTORIES``). The neural tier's (``murmur.enrich.neural.register_builtins()``) need
models or arguments: ``tests/enrich/neural/conformance_factories.py`` builds them as a user would,
once per session, each on the default e5 path and on the float32 path, and the model-hub sentiment
on a tiny model built there. Every check holds for every one of them, but one: on the default e5 path
(int8 ONNX on a CPU, bf16 on a GPU) a post's result moves a little with its batch-mates by design,
so the batch = one by one check runs on the float32 variants instead (``NOT_BATCH_INVARIANT``). The
float32 variants run that check and the pickle check only (``FLOAT32_CHECKS``); the rest would
repeat the default path's at ~10 s each.

Fields a component requires come from the registered component that assigns them: the e5 sentiment
head's ``embedding`` from ``murmur.embed.e5@1`` on the default path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from murmur.enrich import firehose_pipeline, register_builtins
from murmur.enrich.base import COMPONENTS, Pipeline
from murmur.enrich.langid import Cld2LinguaLanguage
from murmur.enrich.lexical import LexicalSentiment
from murmur.enrich.neural import register_builtins as register_neural
from murmur.errors import PipelineError
from tests.enrich.conformance import CHECKS, Factory, make_posts
from tests.enrich.neural import conformance_factories as neural

register_builtins()
register_neural()
FACTORIES: dict[str, Factory] = {
    name: COMPONENTS.get(name)
    for name in COMPONENTS.names()
    if name not in {n.partition("[")[0] for n in neural.NAMES}
}


@pytest.fixture(scope="session")
def neural_factories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Factory]:
    return neural.neural_factories(Path(tmp_path_factory.mktemp("neural-conformance")))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_component_conforms(name: str, check: object) -> None:
    assert callable(check)
    check(FACTORIES[name])


@pytest.mark.parametrize(
    ("name", "check"),
    [
        pytest.param(name, check, id=f"{name}-{check.__name__}")
        for name in neural.NAMES
        for check in CHECKS
        if neural.runs(name, check.__name__)
    ],
)
def test_neural_component_conforms(name: str, check: object, neural_factories: dict[str, Factory]) -> None:
    assert callable(check)
    check(neural_factories[name])


def test_every_check_runs_on_some_neural_variant() -> None:
    for base in {n.partition("[")[0] for n in neural.NAMES}:
        for check in CHECKS:
            variants = [n for n in neural.NAMES if n.partition("[")[0] == base]
            assert any(neural.runs(n, check.__name__) for n in variants), (base, check.__name__)


def test_every_builtin_is_checked() -> None:
    for name in ("murmur.lang.cld2lingua@2", "murmur.sentiment.lexical@1", "murmur.terms@1"):
        assert name in FACTORIES
    assert "murmur.neardup.simhash@1" in FACTORIES
    checked = set(FACTORIES) | {n.partition("[")[0] for n in neural.NAMES}
    assert set(COMPONENTS.names()) <= checked, "a registered component misses the conformance suite"


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
