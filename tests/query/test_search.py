"""Historical search: counts with k-anonymity, example posts without authors, time bounds, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from murmur.cli.main import app
from murmur.errors import QueryError
from murmur.query import matches, parse
from murmur.query.audit import add_audit_hook, remove_audit_hook
from murmur.query.search import POINT_QUERIES_UP_TO, parse_time, search
from murmur.store import DirectReader, Store
from tests.query.helpers import T0, open_store, post


def corpus() -> list[Any]:
    posts = []
    # "storm" on reddit from 6 authors, on mastodon from 2 authors (under k=5), "calm" from 1 author.
    for i in range(6):
        posts.append(
            post(f"r{i}", f"Storm number {i} over Hamburg", author=f"r{i}", platform="reddit", lang="de")
        )
    for i in range(2):
        posts.append(post(f"m{i}", f"storm again {i}", author=f"m{i}", minutes=10 + i, lang="en"))
    posts += [post(f"c{i}", "all calm", author="lonely", minutes=20 + i) for i in range(4)]
    return posts


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path, corpus())
    yield s
    s.close()


@pytest.fixture
def reader(store: Store) -> DirectReader:
    return DirectReader(store.conn.cursor())


def test_counts_by_platform_and_language_with_k_anonymity(reader: DirectReader) -> None:
    result = search(reader, "storm", k=5)
    assert (result.total.posts, result.total.suppressed) == (8, False)
    # mastodon (2 authors) is under k; reddit's 6 would give it away as 8 - 6, so it goes too
    cells = {c.key["platform"]: (c.posts, c.suppressed) for c in result.by_platform}
    assert cells == {"reddit": (None, True), "mastodon": (None, True)}
    langs = {c.key["lang"]: (c.posts, c.suppressed) for c in result.by_lang}
    assert langs == {"de": (None, True), "en": (None, True)}
    # with k = 2 nothing is under k, and every count shows
    shown = {c.key["platform"]: c.posts for c in search(reader, "storm", k=2).by_platform}
    assert shown == {"reddit": 6, "mastodon": 2}
    # Examples come only from cells of k authors, and not from reddit's hidden cell while 20 of them
    # would list its 6 posts whole (counting them would give 6, and 8 - 6 mastodon's count).
    assert result.posts == []
    few = search(reader, "storm", k=5, limit=3)
    assert [p["post_id"] for p in few.posts] == ["r5", "r4", "r3"]
    # With every cell shown: newest first, redacted text only.
    both = search(reader, "storm", k=2)
    assert [p["post_id"] for p in both.posts][:2] == ["m1", "m0"]
    assert len(both.posts) == 8


def test_a_group_under_k_authors_shows_no_count_and_no_examples(reader: DirectReader) -> None:
    result = search(reader, "calm", k=5)
    assert result.total.suppressed
    assert result.total.posts is None
    assert result.examples_withheld
    assert result.posts == []
    assert search(reader, "calm", k=1).total.posts == 4


def test_no_author_ever_leaves_the_query_layer(reader: DirectReader) -> None:
    result = search(reader, "storm OR calm", k=1)
    text = json.dumps(result.as_dict(), default=str)
    assert "author" not in text
    assert "key-" not in text  # no author key value either
    assert result.posts
    assert all("author_key" not in p for p in result.posts)


def test_since_and_until_bound_the_creation_time(reader: DirectReader) -> None:
    late = search(reader, "storm", k=1, since=T0 + timedelta(minutes=5))
    assert late.total.posts == 2
    early = search(reader, "storm", k=1, until=T0 + timedelta(minutes=5))
    assert early.total.posts == 6
    none = search(reader, "storm", k=1, since=T0 + timedelta(days=1))
    assert none.total.posts == 0
    assert none.posts == []


def test_limit_caps_the_examples(reader: DirectReader) -> None:
    assert len(search(reader, "storm", k=1, limit=3).posts) == 3
    assert search(reader, "storm", k=1, limit=0).posts == []


def test_many_examples_come_back_whole_and_newest_first(tmp_path: Path) -> None:
    # more than POINT_QUERIES_UP_TO examples are fetched in one join instead of one query each
    n = POINT_QUERIES_UP_TO * 2 + 3
    posts = [post(f"w{i}", f"wave {i}", author=f"a{i % 9}", minutes=i, lang="en") for i in range(n)]
    with open_store(tmp_path, posts) as store:
        reader = DirectReader(store.conn.cursor())
        many = search(reader, "wave", k=5, limit=n)
        few = search(reader, "wave", k=5, limit=POINT_QUERIES_UP_TO)
    assert [p["post_id"] for p in many.posts] == [f"w{i}" for i in reversed(range(n))]
    assert [p["text"] for p in many.posts][:2] == [f"wave {n - 1}", f"wave {n - 2}"]
    assert few.posts == many.posts[:POINT_QUERIES_UP_TO]


def test_searches_are_audited(reader: DirectReader) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def hook(action: str, details: Mapping[str, Any]) -> None:
        seen.append((action, dict(details)))

    add_audit_hook(hook)
    try:
        search(reader, "storm", since=T0)
    finally:
        remove_audit_hook(hook)
    assert seen == [("search", {"query": "storm", "since": T0.isoformat(), "until": None})]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T12:30", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2026-03-01T12:30+02:00", datetime(2026, 3, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_parse_time_names_the_option() -> None:
    with pytest.raises(QueryError, match="--since: expected an ISO 8601"):
        parse_time("yesterday", option="--since")


# --- CLI ---------------------------------------------------------------------------------------------
def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_cli_search_json(tmp_path: Path) -> None:
    open_store(tmp_path, corpus()).close()
    db = str(tmp_path / "store.duckdb")
    res = run("search", "storm -calm", "--db", db, "--json", "--since", "2026-03-01", "--limit", "3")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["query"] == "storm AND (NOT calm)"
    assert out["total"] == {"posts": 8, "suppressed": False}
    assert out["k"] == 5
    assert out["posts"][0]["text"] == "Storm number 5 over Hamburg"  # mastodon's cell is under k


def test_cli_search_table_and_errors(tmp_path: Path) -> None:
    open_store(tmp_path, corpus()).close()
    db = str(tmp_path / "store.duckdb")
    res = run("search", "Hamburg", "--db", db)
    assert res.exit_code == 0, res.output
    assert "posts  6" in res.stdout
    assert "Storm number" in res.stdout
    bad = run("search", "storm AND (calm OR", "--db", db)
    assert bad.exit_code == 2
    assert "after OR" in bad.output
    assert "^" in bad.output
    author = run("search", "from:someone", "--db", db)
    assert author.exit_code == 2
    assert "no author field" in author.output
    when = run("search", "storm", "--db", db, "--until", "soon")
    assert when.exit_code == 2
    assert "--until" in when.output
    empty = run("search", "storm", "--db", db, "--since", "2026-03-05", "--until", "2026-03-01")
    assert empty.exit_code == 2
    assert "since 2026-03-05T00:00:00+00:00 is not before until 2026-03-01T00:00:00+00:00" in empty.output


def test_cli_monitor_add_list_remove(tmp_path: Path) -> None:
    open_store(tmp_path, corpus()).close()
    db = str(tmp_path / "store.duckdb")
    added = run("monitor", "add", "storms", "storm OR sturm", "--db", db)
    assert added.exit_code == 0, added.output
    assert "stored posts matching: 8" in added.stdout
    listed = run("monitor", "list", "--db", db, "--json")
    assert listed.exit_code == 0, listed.output
    assert [(m["monitor_id"], m["matches"]) for m in json.loads(listed.stdout)] == [("storms", 8)]
    again = run("monitor", "add", "storms", "storm", "--db", db)
    assert again.exit_code == 2
    assert "exists already" in again.output
    removed = run("monitor", "remove", "storms", "--db", db)
    assert removed.exit_code == 0
    assert "removed with its matches: 8" in removed.stdout
    assert json.loads(run("monitor", "list", "--db", db, "--json").stdout) == []


def test_cli_monitor_remove_shows_no_count_under_k(tmp_path: Path) -> None:
    open_store(tmp_path, corpus()).close()
    db = str(tmp_path / "store.duckdb")
    added = run("monitor", "add", "calm", "calm", "--db", db)  # 4 posts, one author
    assert "stored posts matching: suppressed" in added.stdout
    removed = run("monitor", "remove", "calm", "--db", db)
    assert removed.exit_code == 0, removed.output
    assert "removed with its matches: suppressed (fewer than k authors)" in removed.stdout
    assert "4" not in removed.stdout  # the raw count of one author's posts was shown here


def test_cli_monitor_add_without_backfill_does_not_claim_no_stored_post_matches(tmp_path: Path) -> None:
    open_store(tmp_path, corpus()).close()
    db = str(tmp_path / "store.duckdb")
    added = run("monitor", "add", "storms", "storm", "--db", db, "--no-backfill")
    assert added.exit_code == 0, added.output
    assert "stored posts matching: 0" not in added.stdout  # 8 stored posts match; none were looked at
    assert "stored posts not matched (--no-backfill)" in added.stdout


def test_examples_skip_cells_under_k_even_when_they_are_the_newest(tmp_path: Path) -> None:
    posts = [post(f"e{i}", f"wave {i}", author=f"a{i % 10}", minutes=i, lang="en") for i in range(30)]
    posts += [post(f"t{i}", f"wave t{i}", author="one", minutes=100 + i, lang="et") for i in range(5)]
    with open_store(tmp_path, posts) as store:
        result = search(DirectReader(store.conn.cursor()), "wave", k=5, limit=5)
    assert result.total.posts == 35
    # et (one author) is under k; en is hidden with it, but 5 examples cannot list its 30 posts
    assert {c.key["lang"]: c.posts for c in result.by_lang} == {"en": None, "et": None}
    assert [p["post_id"] for p in result.posts] == ["e29", "e28", "e27", "e26", "e25"]


def test_lang_und_finds_the_posts_search_counts_as_und(tmp_path: Path) -> None:
    # no detected and no declared language: search's breakdown says "und", and so must lang:und
    posts = [post(f"n{i}", "storm", author=f"a{i}", minutes=i) for i in range(5)]
    posts += [post("u", "storm", author="b", lang="und"), post("e", "storm", author="c", lang="en")]
    with open_store(tmp_path, posts) as store:
        reader = DirectReader(store.conn.cursor())
        assert {c.key["lang"]: c.posts for c in search(reader, "storm", k=1).by_lang} == {"und": 6, "en": 1}
        assert search(reader, "lang:und", k=1).total.posts == 6
    q = parse("lang:und")
    assert [p.post_id for p in posts if matches(q, p)] == [f"n{i}" for i in range(5)] + ["u"]


def test_lang_ar_finds_moroccan_and_algerian_arabic_as_lang_pt_finds_pt_br(tmp_path: Path) -> None:
    # language identification names the two dialects (ary, arq) within the Arabic macrolanguage
    posts = [
        post(f"{lang}{i}", "storm", author=f"{lang}{i}", lang=lang)
        for lang in ("ar", "ary", "arq", "fa")
        for i in range(2)
    ]
    with open_store(tmp_path, posts) as store:
        reader = DirectReader(store.conn.cursor())
        assert search(reader, "lang:ar", k=1).total.posts == 6
        assert search(reader, "lang:ary", k=1).total.posts == 2
    for text, ids in (
        ("lang:ar", ["ar0", "ar1", "ary0", "ary1", "arq0", "arq1"]),
        ("lang:arq", ["arq0", "arq1"]),
    ):
        assert [p.post_id for p in posts if matches(parse(text), p)] == ids
