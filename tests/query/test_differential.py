"""Live matching and historical search return exactly the same posts, for hundreds of generated
queries over every real post in ../shared/data (plus CJK/Thai sentences and case/accent variants)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from murmur.query import MonitorMatcher, compile_where, parse
from murmur.query.ast import Query
from murmur.query.monitors import MonitorStage, add_monitor
from murmur.query.search import search
from murmur.store import DirectReader
from tests.query.conftest import RealStore, current
from tests.query.strategies import printed, queries

Key = tuple[str, str]


def live_ids(
    rs: RealStore, monitors: list[tuple[str, Query]], *, indexed: bool = True
) -> dict[str, set[Key]]:
    out: dict[str, set[Key]] = {name: set() for name, _ in monitors}
    for post, names in zip(
        rs.posts, MonitorMatcher(monitors, indexed=indexed).match_docs(rs.docs), strict=True
    ):
        for name in names:
            out[name].add(post.key)
    return out


QUERIES_PER_EXAMPLE = 25
_HEAVY = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


def query_texts() -> st.SearchStrategy[str]:
    """Generated queries over the real vocabulary, printed as a user would type them."""
    return st.deferred(lambda: printed(queries(current().vocab)))


@settings(max_examples=14, deadline=None, suppress_health_check=_HEAVY)
@given(texts=st.lists(query_texts(), min_size=QUERIES_PER_EXAMPLE, max_size=QUERIES_PER_EXAMPLE))
def test_live_and_sql_agree_on_generated_queries(real_store: RealStore, texts: list[str]) -> None:
    monitors = [(f"q{i}", parse(text)) for i, text in enumerate(texts)]
    live = live_ids(real_store, monitors)
    for name, query in monitors:
        sql = real_store.sql_ids(compile_where(query))
        assert live[name] == sql, f"{query}: live {len(live[name])} posts, SQL {len(sql)}"


@settings(max_examples=1, derandomize=True, database=None, deadline=None, suppress_health_check=_HEAVY)
@given(texts=st.lists(query_texts(), min_size=200, max_size=200))
def test_generated_queries_find_things(real_store: RealStore, texts: list[str]) -> None:
    """The differential test is only worth something if generated queries match posts: a fixed
    sample of them must, by a good margin."""
    monitors = [(f"q{i}", parse(text)) for i, text in enumerate(texts)]
    live = live_ids(real_store, monitors)
    assert sum(1 for ids in live.values() if ids) >= 40


@settings(max_examples=1, derandomize=True, database=None, deadline=None, suppress_health_check=_HEAVY)
@given(texts=st.lists(query_texts(), min_size=150, max_size=150))
def test_the_index_of_required_terms_loses_nothing(real_store: RealStore, texts: list[str]) -> None:
    """With many monitors at once, the anchored matcher finds what evaluating every monitor on every
    post finds (on every third post, to keep it quick)."""
    monitors = [(f"q{i}", parse(text)) for i, text in enumerate(texts)]
    docs = real_store.docs[::3]
    indexed = MonitorMatcher(monitors).match_docs(docs)
    assert indexed == MonitorMatcher(monitors, indexed=False).match_docs(docs)
    assert sum(map(len, indexed)) > 0


@pytest.mark.parametrize(
    ("query", "at_least"),
    [
        ("café", 2),
        ("CAFE", 2),
        ("ＣＡＦＥ", 2),
        ("crème OR creme", 1),
        ("Straße", 1),
        ("STRASSE köln", 1),
        ("niño", 1),
        ("İSTANBUL", 1),
        ("οδος", 1),
        ('"au lait"', 1),
        ("#café OR #CAFE", 2),
        ("#COP30 -lang:xx", 2),
        ("site:nytimes.com", 3),
        ("site:www.nytimes.com", 3),
        ("site:bbc.co.uk", 3),
        ("site:co.uk -site:bbc.co.uk", 0),
        ("lang:de", 100),
        ("lang:pt-br OR lang:pt", 1),
        ("東京 OR 日本", 1),
        ('"ク ロ ノ"', 1),
        ("ประเทศ OR ไทย", 1),
        ("서울 OR 한국", 1),
        ("reddit NEAR/3 api", 1),
        ("test NEAR/0f post", 1),
        ("(post OR comment) NEAR/5f (test* OR edit*)", 1),
        ("vaccin* OR covid*", 1),
        ("has:link -has:media is:reply", 1),
        ("sentiment:negative country:us", 1),
        ("platform:feed NOT (the OR a)", 1),
    ],
)
def test_live_and_sql_agree_on_chosen_queries(real_store: RealStore, query: str, at_least: int) -> None:
    q = parse(query)
    live = live_ids(real_store, [("q", q)])["q"]
    assert live == real_store.sql_ids(compile_where(q))
    assert len(live) >= at_least


def test_case_and_accent_variants_find_the_same_posts(real_store: RealStore) -> None:
    variants = ["café", "CAFÉ", "Cafe", "cafe", "ＣＡＦＥ"]
    found = [real_store.sql_ids(compile_where(parse(v))) for v in variants]
    assert all(f == found[0] for f in found)
    assert found[0]


def test_search_counts_are_the_live_matches(real_store: RealStore) -> None:
    reader = DirectReader(real_store.store.conn.cursor())
    for text in ("reddit OR api", "lang:de has:link", '"test post" -spam', "café"):
        live = live_ids(real_store, [("q", parse(text))])["q"]
        result = search(reader, text, k=1, limit=5)
        assert result.total.posts == len(live)
        assert {(p["platform"], p["post_id"]) for p in result.posts} <= live


def test_backfill_and_live_stage_store_the_same_matches(real_store: RealStore) -> None:
    conn = real_store.store.conn
    text = '(reddit OR mastodon OR cafe) -"test post"'
    _, backfilled = add_monitor(conn, "diff-check", text)
    try:
        stored = set(
            conn.execute(
                "SELECT platform, post_id FROM monitor_matches WHERE monitor_id = 'diff-check'"
            ).fetchall()
        )
        rows = MonitorStage(conn).match_rows(real_store.posts, real_store.docs)
        live = {
            (p, i)
            for m, p, i in zip(
                rows.column("monitor_id").to_pylist(),
                rows.column("platform").to_pylist(),
                rows.column("post_id").to_pylist(),
                strict=True,
            )
            if m == "diff-check"
        }
        assert backfilled == len(stored) > 0
        assert stored == live
    finally:
        conn.execute("DELETE FROM monitor_matches WHERE monitor_id = 'diff-check'")
        conn.execute("DELETE FROM monitors WHERE monitor_id = 'diff-check'")
