"""Saved monitors: CRUD, backfill over history, live matching at ingest, deletions and reloads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from murmur.errors import QueryError, QuerySyntaxError
from murmur.query.audit import add_audit_hook, remove_audit_hook
from murmur.query.index import reindex
from murmur.query.monitors import MonitorStage, add_monitor, list_monitors, match_count, remove_monitor
from murmur.store import DirectReader, Store
from murmur.types import Deletion
from tests.query.helpers import T0, open_store, post, write


def matches(store: Store, monitor: str) -> set[str]:
    rows = store.conn.execute(
        "SELECT post_id FROM monitor_matches WHERE monitor_id = ?", [monitor]
    ).fetchall()
    return {str(r[0]) for r in rows}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(
        tmp_path,
        [
            post("1", "Flood warning for Köln tonight", lang="de"),
            post("2", "The flood is over, warning lifted", lang="en", platform="reddit"),
            post("3", "Nothing to see here"),
            post("4", "Café crème at the station", hashtags=["cafe"]),
        ],
    )
    yield s
    s.close()


def test_add_backfills_from_history_and_lists(store: Store) -> None:
    mon, n = add_monitor(store.conn, "floods", "flood NEAR/1f warning")
    assert (mon.monitor_id, n) == ("floods", 1)
    assert matches(store, "floods") == {"1"}
    add_monitor(store.conn, "cafe", "#CAFÉ OR köln")
    listed = list_monitors(DirectReader(store.conn.cursor()), k=1)
    assert [(m.monitor_id, m.query, m.matches) for m in listed] == [
        ("cafe", "#CAFÉ OR köln", 2),
        ("floods", "flood NEAR/1f warning", 1),
    ]
    # Counts backed by fewer than k authors are suppressed, like every aggregate.
    suppressed = list_monitors(DirectReader(store.conn.cursor()), k=5)
    assert [m.matches for m in suppressed] == [None, None]
    assert match_count(store.conn, "cafe", k=1) == 2  # all four posts have one author
    assert match_count(store.conn, "cafe", k=2) is None


def test_add_without_backfill_stores_no_history(store: Store) -> None:
    _, n = add_monitor(store.conn, "later", "flood", backfill=False)
    assert n == 0
    assert matches(store, "later") == set()


def test_remove_drops_the_monitor_and_its_matches(store: Store) -> None:
    add_monitor(store.conn, "floods", "flood")
    assert remove_monitor(store.conn, "floods") == 2
    assert matches(store, "floods") == set()
    assert list_monitors(DirectReader(store.conn.cursor()), k=2) == []


def test_bad_names_duplicates_and_queries_are_refused_without_a_trace(store: Store) -> None:
    with pytest.raises(QueryError, match="not allowed"):
        add_monitor(store.conn, "no spaces please", "flood")
    with pytest.raises(QuerySyntaxError):
        add_monitor(store.conn, "bad", "flood AND")
    add_monitor(store.conn, "floods", "flood")
    with pytest.raises(QueryError, match="exists already"):
        add_monitor(store.conn, "floods", "warning")
    with pytest.raises(QueryError, match="no monitor named"):
        remove_monitor(store.conn, "nope")
    assert [m.monitor_id for m in list_monitors(DirectReader(store.conn.cursor()), k=2)] == ["floods"]


def test_live_matches_are_stored_with_the_posts(store: Store) -> None:
    add_monitor(store.conn, "floods", "flood -lifted")
    write(store, [post("5", "FLOOD in the valley"), post("6", "flood warning lifted"), post("7", "sunny")])
    assert matches(store, "floods") == {"1", "5"}
    # The search index got the new posts in the same transaction.
    n = store.conn.execute("SELECT count(*) FROM post_search").fetchone()
    assert n is not None
    assert n[0] == 7


def test_stage_reloads_when_monitors_change(store: Store) -> None:
    stage = MonitorStage(store.conn)
    assert stage.match_rows([post("9", "flood")]).num_rows == 0
    add_monitor(store.conn, "floods", "flood")
    rows = stage.match_rows([post("9", "flood"), post("10", "dry")])
    assert rows.column("monitor_id").to_pylist() == ["floods"]
    assert rows.column("post_id").to_pylist() == ["9"]
    remove_monitor(store.conn, "floods")
    assert stage.match_rows([post("9", "flood")]).num_rows == 0


def test_a_replayed_post_keeps_one_match_and_the_last_version_wins(store: Store) -> None:
    add_monitor(store.conn, "floods", "flood")
    write(store, [post("8", "dry"), post("8", "flood now")])  # same key twice in a batch
    write(store, [post("8", "flood now")])  # at-least-once replay
    assert matches(store, "floods") == {"1", "2", "8"}


def test_deleted_posts_leave_no_matches_or_index_rows(store: Store) -> None:
    add_monitor(store.conn, "floods", "flood")
    store.write(deletions=[Deletion("mastodon", "1")])
    assert matches(store, "floods") == {"2"}
    left = store.conn.execute("SELECT count(*) FROM post_search WHERE post_id = '1'").fetchone()
    assert left is not None
    assert left[0] == 0
    # A replay of the deleted post after its tombstone is neither stored, indexed nor matched.
    write(store, [post("1", "Flood warning for Köln tonight")])
    assert matches(store, "floods") == {"2"}
    left = store.conn.execute("SELECT count(*) FROM post_search WHERE post_id = '1'").fetchone()
    assert left is not None
    assert left[0] == 0


def test_purge_removes_index_rows_and_matches(store: Store) -> None:
    add_monitor(store.conn, "floods", "flood")
    write(store, [post("old", "ancient flood", minutes=-60 * 24 * 400)])
    assert "old" in matches(store, "floods")
    store.purge(older_than=T0 - timedelta(days=30))
    assert "old" not in matches(store, "floods")
    left = store.conn.execute("SELECT count(*) FROM post_search WHERE post_id = 'old'").fetchone()
    assert left is not None
    assert left[0] == 0


def test_reindex_covers_posts_stored_without_the_hook(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "plain.duckdb")
    store.write(posts=[post("1", "flood"), post("2", "drought")])
    assert reindex(store.conn) == 2
    assert reindex(store.conn) == 0
    add_monitor(store.conn, "floods", "flood")
    assert matches(store, "floods") == {"1"}
    store.close()


def test_an_index_built_by_an_older_tokenizer_is_rebuilt_when_a_writer_opens_the_store(
    tmp_path: Path,
) -> None:
    # A fold or field-key change would leave old rows with old words: history and live matching
    # would then read the same query differently.
    from murmur.query.index import INDEX_VERSION
    from murmur.query.live import batch_hooks

    store = Store.open(tmp_path / "old.duckdb")
    store.write(posts=[post("1", "keycap 1\ufe0f\u20e3 flood"), post("2", "drought")])
    assert reindex(store.conn) == 2
    store.conn.execute("UPDATE post_search SET st = ' stale words '")  # as an older tokenizer wrote
    store.conn.execute("INSERT OR REPLACE INTO meta VALUES ('post_search_version', 'older')")
    batch_hooks(store)
    st = store.conn.execute("SELECT st FROM post_search WHERE post_id = '1'").fetchall()[0][0]
    assert st.startswith(" keycap 1 flood ")  # then the field keys
    version = store.conn.execute("SELECT value FROM meta WHERE key = 'post_search_version'").fetchall()
    assert version == [(INDEX_VERSION,)]
    batch_hooks(store)  # current: nothing rebuilt
    assert store.conn.execute("SELECT count(*) FROM post_search").fetchall() == [(2,)]
    store.close()


def test_monitor_changes_are_audited(store: Store) -> None:
    events: list[tuple[str, dict[str, Any]]] = []

    def hook(action: str, details: Mapping[str, Any]) -> None:
        events.append((action, dict(details)))

    add_audit_hook(hook)
    try:
        add_monitor(store.conn, "floods", "flood")
        list_monitors(DirectReader(store.conn.cursor()), k=5)  # it reads match counts: a query too
        remove_monitor(store.conn, "floods")
    finally:
        remove_audit_hook(hook)
    assert [e[0] for e in events] == ["monitor.add", "monitor.list", "monitor.remove"]
    assert events[0][1] == {"monitor_id": "floods", "query": "flood"}
