"""``murmur stats``: k-anonymous totals, also when the total itself is suppressed; ``murmur purge``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from murmur.cli.main import app
from murmur.store import DirectReader
from tests.query.helpers import open_store, post


def stats(db: Path, *extra: str) -> str:
    res = CliRunner().invoke(app, ["stats", "--db", str(db), *extra])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_stats_counts_crowds_and_says_when_the_total_is_suppressed(tmp_path: Path) -> None:
    few = tmp_path / "few"
    few.mkdir()
    open_store(few, [post(f"p{i}", "storm over the city", author="a1") for i in range(3)]).close()
    out = stats(few / "store.duckdb")
    assert "posts: suppressed (< k authors, k=5)" in out.splitlines()[0]
    assert "None" not in out
    few_json = json.loads(stats(few / "store.duckdb", "--json"))
    assert few_json["posts"] is None
    # The store's first and last post times are those of fewer than k authors' posts: not shown.
    assert (few_json["first_post_at"], few_json["last_post_at"]) == (None, None)

    crowd = tmp_path / "crowd"
    crowd.mkdir()
    posts = [post(f"p{i}", "storm over the city", author=f"a{i}") for i in range(6)]
    open_store(crowd, posts).close()
    assert stats(crowd / "store.duckdb").splitlines()[0].startswith("6 posts (k=5)")
    assert json.loads(stats(crowd / "store.duckdb", "--json"))["first_post_at"] == "2026-03-01T00:00:00+00:00"


def test_stats_span_is_the_first_and_last_day_that_meets_k(tmp_path: Path) -> None:
    # The oldest and newest posts are one person's each: their times (to the second) said when that
    # person posted. Only days backed by k authors bound the span.
    crowd = [post(f"p{i}", "storm", author=f"a{i}", minutes=i) for i in range(5)]
    lone = [
        post("early", "storm", author="x", minutes=-30 * 24 * 60 + 7),
        post("late", "storm", author="y", minutes=5 * 24 * 60 + 7),
    ]
    open_store(tmp_path, [*crowd, *lone]).close()
    out = json.loads(stats(tmp_path / "store.duckdb", "--json"))
    assert out["posts"] == 7
    assert (out["first_post_at"], out["last_post_at"]) == (
        "2026-03-01T00:00:00+00:00",
        "2026-03-01T00:00:00+00:00",
    )


def test_purge_refuses_negative_days(tmp_path: Path) -> None:
    open_store(tmp_path, [post("p1", "storm over the city")]).close()
    db = str(tmp_path / "store.duckdb")
    res = CliRunner().invoke(app, ["purge", "--db", db, "--older-than-days", "-5"])
    assert res.exit_code == 2  # -5 days would have meant "everything before 5 days from now"
    assert "--older-than-days" in res.output
    reader = DirectReader.open(db)
    try:
        assert reader.query("SELECT count(*) AS n FROM posts").column("n").to_pylist() == [1]
    finally:
        reader.close()


def test_purge_of_a_store_that_does_not_exist_fails_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "typo.duckdb"
    res = CliRunner().invoke(app, ["purge", "--db", str(db)])
    assert res.exit_code == 2  # it said "purged before ...: 0 posts" and left a new empty store
    assert "does not exist" in res.output
    assert not db.exists()
