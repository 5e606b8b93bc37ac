"""Every built-in source through the same conformance suite (``conformance.py``), each against its
local loopback server fed with the real recorded payloads."""

from __future__ import annotations

import csv
import hashlib
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from murmur.sources.mastodon import id_key
from murmur.sources.reddit import fullname_number
from murmur.testing import has_shared_data
from murmur.testing_servers import (
    FeedServer,
    JetstreamReplayServer,
    MastodonServer,
    RedditServer,
    jetstream_events_from_real_records,
    mastodon_statuses_from_real_payloads,
    real_feed_documents,
    reddit_things_from_real_payloads,
)
from murmur.types import RawEvent
from tests.sources.conformance import (
    SourceCase,
    check_bad_options,
    check_full_run,
    check_registered,
    check_resume,
)

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real recorded payloads)")

FAST = {"backoff_initial": 0.01, "backoff_max": 0.05}
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
STEP_US = 10_000
REWIND_US = 50_000


def digest(event: RawEvent) -> str:
    return hashlib.sha256(event.payload).hexdigest()[:16]


# --- jetstream ----------------------------------------------------------------------------------------


def jetstream_case() -> SourceCase:
    events = jetstream_events_from_real_records(60, start_time_us=T0, step_us=STEP_US, identity_every=20)

    @contextmanager
    def serve(already: int) -> Iterator[dict[str, Any]]:
        with JetstreamReplayServer(events) as server:
            yield {"url": server.url, "rewind_seconds": REWIND_US / 1e6, **FAST}

    return SourceCase(
        name="jetstream",
        type="jetstream",
        serve=serve,
        expected=lambda: [str(orjson.loads(e)["time_us"]) for e in events],
        identity=lambda e: str(orjson.loads(e.payload)["time_us"]),
        order_key=lambda p: (int(p),),
        finite=False,
        replay_allowed=lambda cursor, ident: int(ident) >= int(cursor) - REWIND_US,
        bad_options=[
            ({}, "url"),
            ({"url": "http://127.0.0.1:1/subscribe"}, "url"),
            ({"url": "ws://127.0.0.1:1/subscribe", "rewind_seconds": -1}, "rewind_seconds"),
            ({"url": "ws://127.0.0.1:1/subscribe", "wantedDids": ["did:plc:x"]}, "wantedDids"),
            ({"url": "ws://127.0.0.1:1/subscribe", "backoff_initial": "soon"}, "backoff_initial"),
            ({"url": "ws://127.0.0.1:1/subscribe", "backoff_initial": 5, "backoff_max": 1}, "backoff_max"),
        ],
    )


# --- mastodon -----------------------------------------------------------------------------------------


def mastodon_case(streaming: bool) -> SourceCase:
    statuses = mastodon_statuses_from_real_payloads()

    @contextmanager
    def serve(already: int) -> Iterator[dict[str, Any]]:
        # Statuses before the cursor were published before; the rest arrive on the stream.
        with MastodonServer(statuses, published=max(already, 20) if streaming else None) as server:
            options = {"base_url": server.url, "initial_backfill": 500, "page_limit": 9, **FAST}
            if not streaming:
                options.update(streaming=False, max_polls=1)
            yield options

    bad: list[tuple[dict[str, Any], str]] = [
        ({}, "base_url"),
        ({"base_url": "mastodon.social"}, "base_url"),
        ({"base_url": "https://m.example", "stream": "home"}, "stream"),
        ({"base_url": "https://m.example", "stream": "hashtag"}, "tag"),
        ({"base_url": "https://m.example", "page_limit": 80}, "page_limit"),
        (
            {"base_url": "https://m.example", "access_token_env": "MURMUR_TEST_UNSET_VARIABLE"},
            "access_token_env",
        ),
        ({"base_url": "https://m.example", "max_polls": 0}, "max_polls"),
    ]
    return SourceCase(
        name=f"mastodon-{'stream' if streaming else 'rest'}",
        type="mastodon",
        serve=serve,
        expected=lambda: [str(s["id"]) for s in statuses],
        identity=lambda e: str(orjson.loads(e.payload)["id"]),
        order_key=lambda p: id_key(p),
        finite=not streaming,
        bad_options=bad,
    )


# --- reddit -------------------------------------------------------------------------------------------

SUBREDDITS = ["MapPorn", "modnews"]


def reddit_case() -> SourceCase:
    things = reddit_things_from_real_payloads(subreddits=SUBREDDITS)
    by_id = sorted(things, key=lambda t: int(t["data"]["id"], 36))
    expected = [t["data"]["name"] for t in by_id if t["kind"] == "t3"] + [
        t["data"]["name"] for t in by_id if t["kind"] == "t1"
    ]

    @contextmanager
    def serve(already: int) -> Iterator[dict[str, Any]]:
        with RedditServer(things) as server:
            yield {
                "subreddits": SUBREDDITS,
                "listings": ["new", "comments"],
                "user_agent": "test:murmur.conformance:0.1 (by /u/nobody)",
                "client_id": server.client_id,
                "client_secret": server.client_secret,
                "base_url": server.url,
                "auth_url": server.url,
                "limit": 10,
                "initial_pages": 50,
                "max_pages": 50,
                "max_polls": 1,
                **FAST,
            }

    def order_key(position: str) -> tuple[int, int]:
        newest = orjson.loads(position)
        return tuple(fullname_number(newest[k]) if k in newest else -1 for k in ("new", "comments"))  # type: ignore[return-value]

    ok = {"subreddits": ["MapPorn"], "user_agent": "ua", "client_id": "a", "client_secret": "b"}
    return SourceCase(
        name="reddit",
        type="reddit",
        serve=serve,
        expected=lambda: expected,
        identity=lambda e: str(orjson.loads(e.payload)["data"]["name"]),
        order_key=order_key,
        finite=True,
        bad_options=[
            ({k: v for k, v in ok.items() if k != "subreddits"}, "subreddits"),
            ({**ok, "subreddits": ["no spaces allowed"]}, "subreddits"),
            ({k: v for k, v in ok.items() if k != "user_agent"}, "user_agent"),
            ({k: v for k, v in ok.items() if k != "client_secret"}, "client_secret"),
            ({**ok, "listings": ["hot"]}, "listings"),
            ({**ok, "limit": 500}, "limit"),
        ],
    )


# --- feeds --------------------------------------------------------------------------------------------


def feed_case() -> SourceCase:
    docs = dict(list(real_feed_documents().items())[:8])
    port = [0]  # the cursor is keyed by feed URL: every run serves on the same port

    @contextmanager
    def serve(already: int) -> Iterator[dict[str, Any]]:
        with FeedServer(docs, port=port[0]) as server:
            port[0] = server.port
            yield {"urls": server.urls, "interval": 0, "max_polls": 1, **FAST}

    return SourceCase(
        name="feed",
        type="feed",
        serve=serve,
        expected=lambda: [hashlib.sha256(docs[name]).hexdigest()[:16] for name in sorted(docs)],
        identity=digest,
        order_key=lambda p: (orjson.loads(p)["seq"],),
        finite=True,
        bad_options=[
            ({}, "urls"),
            ({"urls": []}, "urls"),
            ({"urls": ["ftp://example.org/feed.xml"]}, "urls"),
            ({"urls": ["https://example.org/feed.xml"], "interval": -1}, "interval"),
            ({"urls": ["https://example.org/feed.xml"], "concurrency": 0}, "concurrency"),
        ],
    )


# --- files --------------------------------------------------------------------------------------------


def reddit_rows(n: int) -> list[dict[str, Any]]:
    rows = []
    for thing in reddit_things_from_real_payloads(limit=n):
        d = thing["data"]
        rows.append(
            {
                "id": d["name"],
                "text": d.get("title") or d.get("body") or "",
                "created_utc": d.get("created_utc"),
                "author": d.get("author"),
                "subreddit": d.get("subreddit"),
            }
        )
    return rows


def write_file(path: Path, kind: str) -> None:
    if kind == "jsonl":
        path.write_bytes(b"\n".join(orjson.dumps(s) for s in mastodon_statuses_from_real_payloads()) + b"\n")
    elif kind == "csv":
        rows = reddit_rows(40)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
        pq.write_table(pa.Table.from_pylist(reddit_rows(40)), str(path), row_group_size=7)


def file_case(tmp: Path, kind: str) -> SourceCase:
    path = tmp / f"sample.{kind}"
    write_file(path, kind)

    @contextmanager
    def serve(already: int) -> Iterator[dict[str, Any]]:
        yield {"path": str(path), "batch_rows": 16}

    def expected() -> list[str]:
        # What a single uninterrupted read gives, computed independently of the source.
        if kind == "jsonl":
            return [
                hashlib.sha256(line).hexdigest()[:16]
                for line in path.read_bytes().splitlines()
                if line.strip()
            ]
        return [hashlib.sha256(orjson.dumps(r)).hexdigest()[:16] for r in rows_as_read(path, kind)]

    return SourceCase(
        name=f"file-{kind}",
        type="file",
        serve=serve,
        expected=expected,
        identity=digest,
        order_key=lambda p: (int(p),),
        finite=True,
        bad_options=[
            ({}, "path"),
            ({"path": str(tmp / "missing.jsonl")}, "path"),
            ({"path": str(path), "format": "nope"}, "format"),
            ({"path": str(path), "batch_rows": 0}, "batch_rows"),
        ],
    )


def rows_as_read(path: Path, kind: str) -> list[dict[str, Any]]:
    from murmur.sources.normalize import iter_file_rows

    return [orjson.loads(payload) for _, payload in iter_file_rows(path, kind)]


# --- the suite ------------------------------------------------------------------------------------------

CASES = [
    "jetstream",
    "mastodon-stream",
    "mastodon-rest",
    "reddit",
    "feed",
    "file-jsonl",
    "file-csv",
    "file-parquet",
]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SourceCase]:
    tmp = tmp_path_factory.mktemp("conformance")
    built = [jetstream_case(), mastodon_case(True), mastodon_case(False), reddit_case(), feed_case()]
    built += [file_case(tmp, kind) for kind in ("jsonl", "csv", "parquet")]
    return {c.name: c for c in built}


@pytest.mark.parametrize("name", CASES)
def test_conformance(cases: dict[str, SourceCase], name: str) -> None:
    case = cases[name]
    check_registered(case)
    check_bad_options(case)
    full = check_full_run(case)
    check_resume(case, full)
