"""Sources: where raw payloads enter murmur. One module per platform, each a ``Source`` (``base.py``).

==============  =====================================================  ==========================
type            what                                                   cursor
==============  =====================================================  ==========================
``jetstream``   Bluesky Jetstream WebSocket (``jetstream.py``)          largest ``time_us``
``mastodon``    Mastodon SSE streaming + REST backfill (``mastodon.py``)  highest status id
``reddit``      Reddit OAuth + subreddit listings (``reddit.py``)       newest fullname per listing
``feed``        RSS/Atom/JSON Feed polling with ETag (``feeds.py``)     per-feed validators + seen
``file``        JSONL/JSON/CSV/Parquet/feed files (``files.py``)        last row number
==============  =====================================================  ==========================

Reconnect backoff, rate-limit waits and option parsing are shared (``backoff.py``). Built-in source
types are registered by ``register_builtins()``, exactly as a plugin would register its own; the
source modules are imported only then, so importing ``murmur.sources`` stays cheap.
"""

from __future__ import annotations

from murmur.registry import Registry
from murmur.sources.base import SOURCES, Source, SourceFactory, SourceStats


def register_builtins(registry: Registry[SourceFactory] = SOURCES) -> None:
    """Register murmur's own source types (idempotent)."""
    from murmur.sources.feeds import feed_source
    from murmur.sources.files import file_source
    from murmur.sources.jetstream import jetstream_source
    from murmur.sources.mastodon import mastodon_source
    from murmur.sources.reddit import reddit_source

    builtins: dict[str, SourceFactory] = {
        "jetstream": jetstream_source,
        "mastodon": mastodon_source,
        "reddit": reddit_source,
        "feed": feed_source,
        "file": file_source,
    }
    names = set(registry.names())
    for name, factory in builtins.items():
        if name not in names:
            registry.register(name, factory)


__all__ = ["SOURCES", "Source", "SourceFactory", "SourceStats", "register_builtins"]
