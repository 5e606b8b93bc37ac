"""``murmur stats``: k-anonymous totals, also when the total itself is suppressed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from murmur.cli.main import app
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
    assert json.loads(stats(few / "store.duckdb", "--json"))["posts"] is None

    crowd = tmp_path / "crowd"
    crowd.mkdir()
    posts = [post(f"p{i}", "storm over the city", author=f"a{i}") for i in range(6)]
    open_store(crowd, posts).close()
    assert stats(crowd / "store.duckdb").splitlines()[0].startswith("6 posts (k=5)")
