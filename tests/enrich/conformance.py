"""One conformance suite for every enrichment component (like River's ``test_estimators.py``).

``check_component(factory)`` runs every check below on fresh instances from ``factory``:

* the name carries a version; ``requires``/``assigns`` are ``Post`` fields; ``assigns`` are
  enrichment fields;
* an empty batch is a no-op;
* it assigns every declared field on ordinary text, and nothing else;
* it survives hard text: empty, emoji only, whitespace, very long, RTL (Arabic, Hebrew), CJK,
  Indic scripts, control and C1 characters, a lone surrogate, a link only, mixed scripts;
* a batch gives the same result as the same posts one by one (floats within ``FLOAT_TOL``);
* two fresh instances give the same result (deterministic);
* it pickles, and the reloaded copy goes on exactly like the original (state included).

Fields a component ``requires`` are filled first by the registered component that assigns them
(``prepare``), so a component is tested the way a pipeline would run it.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

from murmur.enrich.base import COMPONENTS, ENRICHMENT_FIELDS, Component
from murmur.types import Post

Factory = Callable[[], Component]
FLOAT_TOL = 1e-4
T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""When every test post was created and ingested."""
POST_FIELDS = frozenset(f.name for f in fields(Post))

ORDINARY = [
    "The city council approved the new climate plan tonight, great news for everyone! #climate",
    "Je suis tellement déçu par ce match, quelle honte pour l'équipe 😡",
    "Das neue Gesetz tritt morgen in Kraft, mehr dazu unter https://example.org/gesetz",
    "@user gracias por todo, fue un día increíble con la familia ❤️",
    "Hoje o trânsito em São Paulo está horrível, três horas para chegar em casa.",
    "Il governo ha annunciato nuove misure per l'economia, vedremo se funzioneranno.",
    "أعلنت الحكومة اليوم عن خطة جديدة لدعم الاقتصاد المحلي",
    "東京オリンピックの開会式は素晴らしかった。感動しました！",
    "मुझे यह फिल्म बहुत पसंद आई, सभी को देखनी चाहिए",
    "Новый закон вступает в силу с понедельника, подробности на сайте.",
]
HARD = [
    "",
    "   \n\t ",
    "😂😂😂🔥",
    "👍🏽👨‍👩‍👧",
    "https://example.com/only-a-link",
    "@user @user",
    "#hashtag",
    "שלום עולם, מה שלומכם היום?",
    "مرحبا 😀 hello world مرحبا",
    "我们今天去北京天安门广场参观了",
    "한국어 텍스트도 처리해야 합니다",
    "தமிழ் மொழி மிகவும் பழமையானது",
    "ok",
    "a",
    "\x00\x01\x92 control \x85 and C1 \x9f characters",
    "lone surrogate \ud800 inside",
    "Straße ＣＡＦＥ café ﬁ",
    "word " * 20_000,
    "x" * 50_000,
]


def make_post(text: str, i: int = 0, **overrides: Any) -> Post:
    base = Post(
        platform="file",
        post_id=f"p{i}",
        created_at=T0,
        ingested_at=T0,
        author_key="k" * 16,
        text=text,
    )
    return replace(base, **overrides) if overrides else base


def make_posts(texts: Sequence[str]) -> list[Post]:
    return [make_post(t, i) for i, t in enumerate(texts)]


def newest_first(name: str) -> tuple[str, int]:
    base, _, version = name.partition("[")[0].rpartition("@")
    return base, -int(version) if version.isdigit() else 0


def prepare(posts: Sequence[Post], requires: frozenset[str], exclude: str) -> None:
    """Fill ``requires`` with the registered components that assign them (not ``exclude``), the
    newest version of a component first (``murmur.neardup.cluster@3`` needs ``simhash@2``'s
    signatures; ``cluster@2`` reads both versions')."""
    missing = set(requires) - (POST_FIELDS - ENRICHMENT_FIELDS)
    for name in sorted(COMPONENTS.names(), key=newest_first):
        if not missing:
            break
        cls = COMPONENTS.get(name)
        if name == exclude or not (cls.assigns & missing) or cls.requires & missing:
            continue
        cls().process(posts)
        missing -= cls.assigns
    assert not missing, f"no registered component assigns {sorted(missing)}, needed by {exclude}"


def snapshot(post: Post) -> dict[str, Any]:
    return {f: getattr(post, f) for f in POST_FIELDS}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=FLOAT_TOL)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def assigned(posts: Sequence[Post], assigns: frozenset[str]) -> list[dict[str, Any]]:
    return [{f: getattr(p, f) for f in sorted(assigns)} for p in posts]


def assert_same(a: list[dict[str, Any]], b: list[dict[str, Any]], what: str) -> None:
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for f in x:
            assert same(x[f], y[f]), f"{what}: post {i} field {f!r}: {x[f]!r} != {y[f]!r}"


def run(comp: Component, texts: Sequence[str], *, one_by_one: bool = False) -> list[Post]:
    posts = make_posts(texts)
    prepare(posts, comp.requires, comp.name)
    if one_by_one:
        for p in posts:
            comp.process([p])
    else:
        comp.process(posts)
    return posts


# --- the checks ----------------------------------------------------------------------------------


def check_declaration(factory: Factory) -> None:
    comp = factory()
    base, _, version = comp.name.partition("@")
    assert base, f"{comp.name!r}: a component name is 'dotted.name@<version>'"
    assert version.isdigit(), f"{comp.name!r}: a component name is 'dotted.name@<version>'"
    assert comp.requires <= POST_FIELDS, f"{comp.name} requires unknown fields {comp.requires - POST_FIELDS}"
    assert comp.assigns, f"{comp.name} assigns nothing"
    assert comp.assigns <= ENRICHMENT_FIELDS, (
        f"{comp.name} assigns non-enrichment {comp.assigns - ENRICHMENT_FIELDS}"
    )
    assert not (comp.assigns & comp.requires), f"{comp.name} both requires and assigns a field"


def check_empty_batch(factory: Factory) -> None:
    factory().process([])


def check_assigns_exactly(factory: Factory) -> None:
    comp = factory()
    posts = make_posts(ORDINARY)
    prepare(posts, comp.requires, comp.name)
    before = [snapshot(p) for p in posts]
    comp.process(posts)
    for i, (b, p) in enumerate(zip(before, posts, strict=True)):
        after = snapshot(p)
        changed = {f for f in POST_FIELDS if not same(b[f], after[f])}
        assert changed <= comp.assigns, f"{comp.name} changed undeclared fields {changed - comp.assigns}"
        unset = sorted(f for f in comp.assigns if after[f] is None)
        assert not unset, f"{comp.name} left {unset} unset on ordinary post {i}: {p.text!r}"


def check_hard_text(factory: Factory) -> None:
    comp = factory()
    posts = run(comp, HARD)
    for p in posts:  # whatever the values, they have the declared types' shapes
        if "lang" in comp.assigns:
            assert isinstance(p.lang, str), p.text[:40]
            assert p.lang, p.text[:40]
        if "terms" in comp.assigns:
            assert isinstance(p.terms, list), p.text[:40]


def check_batch_equals_one_by_one(factory: Factory) -> None:
    texts = ORDINARY + HARD[:-2] + ORDINARY[::-1]
    comp_batch, comp_single = factory(), factory()
    a = assigned(run(comp_batch, texts), comp_batch.assigns)
    b = assigned(run(comp_single, texts, one_by_one=True), comp_single.assigns)
    assert_same(a, b, f"{comp_batch.name}: batch vs one by one")


def check_deterministic(factory: Factory) -> None:
    texts = ORDINARY + HARD[:-2]
    c1, c2 = factory(), factory()
    assert_same(
        assigned(run(c1, texts), c1.assigns), assigned(run(c2, texts), c2.assigns), f"{c1.name}: two runs"
    )


def check_pickle(factory: Factory) -> None:
    comp = factory()
    run(comp, ORDINARY[:5])  # build up state, if any
    clone = pickle.loads(pickle.dumps(comp))
    assert clone.name == comp.name
    later = ORDINARY[5:] + ORDINARY[:5]  # includes texts seen before: stateful components remember
    assert_same(
        assigned(run(comp, later), comp.assigns),
        assigned(run(clone, later), clone.assigns),
        f"{comp.name}: original vs pickled copy",
    )


CHECKS: tuple[Callable[[Factory], None], ...] = (
    check_declaration,
    check_empty_batch,
    check_assigns_exactly,
    check_hard_text,
    check_batch_equals_one_by_one,
    check_deterministic,
    check_pickle,
)


def check_component(factory: Factory) -> None:
    for check in CHECKS:
        check(factory)
