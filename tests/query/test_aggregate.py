"""k-anonymous breakdowns: suppressed cells show no count, and their order does not give one away."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from murmur.query.aggregate import Cell, complement, grouped_counts, store_stats
from murmur.query.audit import add_audit_hook, remove_audit_hook
from murmur.store import DirectReader
from tests.query.helpers import open_store, post


def test_suppressed_cells_come_last_in_key_order(tmp_path: Path) -> None:
    posts = [post(f"a{i}", "a", author=f"a{i}", lang="en") for i in range(9)]
    posts += [post(f"b{i}", "b", author=f"b{i}", lang="de") for i in range(5)]
    # Under k=5 authors: "zu" from 4 authors, 8 posts (more than "de"), "af" from 1 author.
    posts += [post(f"z{i}", "z", author=f"z{i % 4}", lang="zu") for i in range(8)]
    posts += [post("y0", "y", author="y0", lang="af")]
    store = open_store(tmp_path, posts)
    try:
        cells = grouped_counts(DirectReader(store.conn.cursor()), ["lang"], k=5)
    finally:
        store.close()
    # Ranked by count, "zu" (8 posts) came between "en" (9) and "de" (5), which bounds its count.
    assert [(c.key["lang"], c.posts) for c in cells] == [("en", 9), ("de", 5), ("af", None), ("zu", None)]


def test_an_open_breakdown_does_not_name_its_suppressed_cells(tmp_path: Path) -> None:
    # A hashtag (term, community) under k authors is itself what fewer than k people wrote:
    # `murmur demo`'s "top hashtags" listed ten of them by name.
    posts = [post(f"a{i}", "a", author=f"a{i}", hashtags=("big",)) for i in range(9)]
    posts += [post(f"z{i}", "z", author=f"z{i % 4}", hashtags=("zzz",)) for i in range(8)]
    posts += [post("y0", "y", author="y0", hashtags=("janedoe4mayor",), community="tinyclub")]
    store = open_store(tmp_path, posts)
    try:
        reader = DirectReader(store.conn.cursor())
        tags = grouped_counts(reader, ["hashtag"], k=5)
        communities = grouped_counts(reader, ["community"], k=5)
    finally:
        store.close()
    assert [c.as_dict() for c in tags] == [
        {"hashtag": "big", "posts": 9, "suppressed": False},
        {"hashtag": None, "posts": None, "suppressed": True, "hidden": 2},
    ]
    assert "tinyclub" not in repr(communities)
    assert communities[-1].hidden >= 1


def test_store_stats_is_audited(tmp_path: Path) -> None:
    events: list[str] = []

    def hook(action: str, details: Mapping[str, Any]) -> None:
        events.append(action)

    store = open_store(tmp_path, [post("p1", "storm")])
    add_audit_hook(hook)
    try:
        store_stats(DirectReader(store.conn.cursor()), k=5)
    finally:
        remove_audit_hook(hook)
        store.close()
    assert events == ["stats"]


def test_grouped_counts_are_audited(tmp_path: Path) -> None:
    # `murmur demo`'s top hashtags, domains and sentiments were queried without an audit event.
    events: list[tuple[str, dict[str, Any]]] = []

    def hook(action: str, details: Mapping[str, Any]) -> None:
        events.append((action, dict(details)))

    store = open_store(tmp_path, [post("p1", "storm", hashtags=("storm",))])
    add_audit_hook(hook)
    try:
        grouped_counts(DirectReader(store.conn.cursor()), ["hashtag"], k=5)
    finally:
        remove_audit_hook(hook)
        store.close()
    assert events == [("counts", {"by": ["hashtag"], "table": "posts"})]


def test_a_lone_suppressed_cell_takes_the_smallest_shown_one_with_it() -> None:
    cells = [
        Cell({"lang": "en"}, 40, False),
        Cell({"lang": "de"}, 9, False),
        Cell({"lang": "fr"}, None, True),
    ]
    got = {c.key["lang"]: c.posts for c in complement(cells)}
    assert got == {"en": 40, "de": None, "fr": None}  # fr = total - 40 - 9 would have shown
    two = [*cells[:2], Cell({"lang": "it"}, None, True), cells[2]]
    assert complement(two) == two  # two suppressed cells give away only their sum
    assert complement(cells[:2]) == cells[:2]
    assert complement([Cell({"lang": "fr"}, None, True)]) == [Cell({"lang": "fr"}, None, True)]


def test_a_breakdown_by_language_cannot_be_subtracted_from_the_total(tmp_path: Path) -> None:
    posts = [post(f"e{i}", "e", author=f"e{i}", lang="en") for i in range(12)]
    posts += [post(f"d{i}", "d", author=f"d{i}", lang="de") for i in range(6)]
    posts += [post(f"f{i}", "f", author="f", lang="fr") for i in range(2)]  # one author: under k
    with open_store(tmp_path, posts) as store:
        reader = DirectReader(store.conn.cursor())
        total = grouped_counts(reader, [], k=5)[0].posts
        langs = {c.key["lang"]: c.posts for c in grouped_counts(reader, ["lang"], k=5)}
    assert total == 20
    assert langs == {"en": 12, "de": None, "fr": None}
