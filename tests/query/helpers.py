"""Small hand-made posts and stores for the query tests that need exact control (authors, times)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from murmur.query.live import batch_hooks
from murmur.store import Store
from murmur.types import Platform, Post

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def post(
    post_id: str,
    text: str,
    *,
    author: str = "a1",
    platform: Platform = "mastodon",
    minutes: int = 0,
    **fields: Any,
) -> Post:
    return Post(
        platform=platform,
        post_id=post_id,
        created_at=T0 + timedelta(minutes=minutes),
        ingested_at=T0 + timedelta(minutes=minutes, seconds=1),
        author_key=f"key-{author}",
        text=text,
        **fields,
    )


def write(store: Store, posts: Sequence[Post]) -> None:
    """Store ``posts`` the way the runtime does: with the query layer's hook in the same transaction."""
    (hook,) = batch_hooks(store)
    writer = hook(posts)
    store.write(posts=posts, extras=[writer] if writer else [])


def open_store(tmp_path: Path, posts: Sequence[Post] = ()) -> Store:
    store = Store.open(tmp_path / "store.duckdb")
    if posts:
        write(store, posts)
    return store
