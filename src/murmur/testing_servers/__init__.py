"""Loopback servers that speak the platforms' protocols, built from the real recorded payloads.

Used by the source tests, the crash-safety test (a separate ``murmur run`` process connects to a
server started in a test thread) and ``make demo``. Every server binds ``127.0.0.1`` on a free port
by default, runs in background threads, and is used as::

    with JetstreamReplayServer(jetstream_events_from_real_records(500)) as server:
        ...  # connect to server.url  (ws://127.0.0.1:PORT/subscribe)

or ``server.start()`` / ``server.stop()``.

* ``JetstreamReplayServer``  the Jetstream WebSocket (``/subscribe?wantedCollections=&cursor=``).
* ``MastodonServer``         REST timelines (``since_id``/``max_id``/``min_id``, ``Link``,
                             ``X-RateLimit-*``) and the SSE streaming API.
* ``RedditServer``           OAuth client credentials and ``/r/<subs>/new|comments`` listings with
                             ``before``/``after`` paging and ``X-Ratelimit-*`` headers.
* ``FeedServer``             feed documents with ``ETag``/``Last-Modified`` and conditional GETs.

Layout: ``payloads.py`` builds replayable data from the real payloads, ``jetstream.py`` and
``http.py`` hold the servers (the WebSocket one on ``websockets``' threaded server, the HTTP ones on
the standard library's ``ThreadingHTTPServer``).
"""

from murmur.testing_servers.http import FeedServer, MastodonServer, RedditServer
from murmur.testing_servers.jetstream import JetstreamReplayServer
from murmur.testing_servers.payloads import (
    jetstream_events_from_real_records,
    mastodon_statuses_from_real_payloads,
    real_feed_documents,
    reddit_things_from_real_payloads,
)

__all__ = [
    "FeedServer",
    "JetstreamReplayServer",
    "MastodonServer",
    "RedditServer",
    "jetstream_events_from_real_records",
    "mastodon_statuses_from_real_payloads",
    "real_feed_documents",
    "reddit_things_from_real_payloads",
]
