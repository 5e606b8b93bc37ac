"""``murmur.batch``: posts as columns across processes, the same posts on the other side."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from murmur.batch import BATCH_SCHEMA, POST_COLUMNS, PostBatch, posts_from_table, posts_to_table
from murmur.store import Store
from murmur.types import Post

NOW = datetime(2026, 12, 1, 3, 4, 5, 678901, tzinfo=UTC)


def full_post(i: int) -> Post:
    """Every field set, none at its default."""
    return Post(
        platform="mastodon",
        post_id=f"m{i}",
        created_at=NOW - timedelta(days=i, microseconds=7),
        ingested_at=NOW,
        author_key=f"k{i}",
        text=f"Überschwemmung in Köln 🌊 #{i} 洪水",
        lang_declared="de",
        site="social.example",
        community="news",
        domains=["example.org", "wdr.de"],
        hashtags=["köln"],
        mentions=["@wdr@social.example"],
        is_reply=True,
        is_repost=True,
        has_media=True,
        has_link=True,
        country="DE",
        redactions=2,
        lang="de",
        lang_conf=0.9731,
        sentiment="negative",
        sentiment_score=-0.52,
        sentiment_model="murmur.sentiment.lexical@1",
        terms=["überschwemmung", "köln", "#köln"],
        simhash=(1 << 64) - 1 - i,
        dup_cluster="sh:00000000000000ff",
        embedding=[0.25, -0.5, 1.0],
        embedding_model="e5",
    )


def bare_post(i: int) -> Post:
    """Only what the gate always fills: every optional field at its default."""
    return Post(platform="reddit", post_id=f"r{i}", created_at=NOW, ingested_at=NOW, author_key="k", text="")


def test_round_trip_through_a_table_keeps_every_field() -> None:
    posts = [full_post(1), bare_post(2), full_post(3)]
    again = posts_from_table(posts_to_table(posts))
    assert again == posts
    assert all(p.created_at.tzinfo is not None for p in again)


def test_a_pickled_batch_travels_as_its_table_and_reads_back_equal() -> None:
    posts = [full_post(i) for i in range(50)] + [bare_post(i) for i in range(50)]
    batch = PostBatch([replace(p) for p in posts])
    data = pickle.dumps(batch, protocol=5)
    assert b"Post" not in data  # columns, not pickled Post objects
    other = pickle.loads(data)
    assert repr(other) == "PostBatch(100 posts, held as table)"
    assert len(other) == 100
    assert other.column("simhash")[:2] == [posts[0].simhash, posts[1].simhash]
    assert other.column("created_at")[0] == posts[0].created_at
    assert other.posts == posts
    assert repr(other) == "PostBatch(100 posts, held as posts)"


def test_set_column_works_on_either_form() -> None:
    posts = [full_post(i) for i in range(3)]
    as_table = PostBatch(table=posts_to_table(posts))
    as_posts = PostBatch([replace(p) for p in posts])
    for batch in (as_table, as_posts):
        batch.set_column("dup_cluster", ["a", None, "c"])
        assert batch.column("dup_cluster") == ["a", None, "c"]
        assert [p.dup_cluster for p in batch.posts] == ["a", None, "c"]
    with pytest.raises(ValueError, match="2 values for 3 posts"):
        as_table.set_column("lang", ["de", "fr"])
    with pytest.raises(ValueError, match="'nope' is not a Post field"):
        PostBatch(table=posts_to_table(posts)).set_column("nope", [1, 2, 3])


def test_posts_from_a_stored_select_have_utc_times_and_lists(tmp_path: object) -> None:
    store = Store.open(f"{tmp_path}/s.duckdb")
    try:
        offset = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
        store.write(posts=[replace(bare_post(1), created_at=offset), full_post(2)])
        sql = f"SELECT {', '.join(POST_COLUMNS)} FROM posts ORDER BY post_id"
        table = store.conn.sql(sql).to_arrow_table()
        got = posts_from_table(table)
        assert got[0].post_id == "m2"
        assert got[0].embedding is None
        assert got[0] == replace(full_post(2), embedding=None)
        assert got[1].created_at == offset
        assert got[1].created_at.tzinfo == UTC
        assert got[1].domains == []
        assert got[1].terms is None
    finally:
        store.close()


def test_the_store_writes_a_batch_of_columns_last_write_winning(tmp_path: object) -> None:
    store = Store.open(f"{tmp_path}/s.duckdb")
    try:
        first, second = full_post(1), replace(full_post(1), text="edited")
        batch = PostBatch(table=posts_to_table([first, bare_post(5), second]))
        store.write(posts=batch)
        rows = store.conn.execute("SELECT post_id, text FROM posts ORDER BY post_id").fetchall()
        assert rows == [("m1", "edited"), ("r5", "")]
    finally:
        store.close()


def test_schema_covers_every_post_field() -> None:
    assert set(BATCH_SCHEMA.names) == {f for f in Post.__dataclass_fields__}
    assert BATCH_SCHEMA.field("embedding").type == pa.list_(pa.float32())
