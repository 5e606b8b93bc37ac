"""Replayable test data assembled from the real recorded payloads in ``../shared/data/payloads``.

Every loader takes ``root``: a folder laid out like ``payloads/`` (``bluesky/``, ``mastodon/``,
``reddit/``, ``rss/<collection>/``). By default the shared real data; ``make demo`` passes the
sample bundled in ``murmur/assets/demo``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from murmur.testing import shared_data

_B32_SORT = "234567abcdefghijklmnopqrstuvwxyz"


def _tid(time_us: int, clock_id: int) -> str:
    """An AT Protocol TID (13 chars, sortable base32) for ``time_us``: how real rkeys look."""
    value = ((time_us & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_B32_SORT[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _b32(data: bytes, n: int) -> str:
    return base64.b32encode(data).decode().lower().rstrip("=")[:n]


def _synthetic_did(k: int) -> str:
    return "did:plc:" + _b32(hashlib.sha256(f"murmur-synthetic-author-{k}".encode()).digest(), 24)


def _cid(seed: str) -> str:
    return "bafyrei" + _b32(hashlib.sha256(seed.encode()).digest(), 52)


def _iso_from_us(time_us: int) -> str:
    secs, micros = divmod(time_us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{micros // 1000:03d}Z"


_TAG = re.compile(r"<[^>]+>")
_BR = re.compile(r"<br\s*/?>|</p>\s*<p>", re.IGNORECASE)


def _html_text(content: str) -> str:
    return html.unescape(_TAG.sub("", _BR.sub("\n", content))).strip()


def _root(root: Path | None) -> Path:
    return root if root is not None else shared_data("payloads")


def _real_bluesky_records(root: Path | None = None) -> list[dict[str, Any]]:
    folder = _root(root) / "bluesky"
    records: list[dict[str, Any]] = []
    for name in ("post_record.json", "extended_post_record.json"):
        records.append(orjson.loads((folder / name).read_bytes())["value"])
    thread = orjson.loads((folder / "thread_view_post_with_embed_media.json").read_bytes())
    records.append(thread["thread"]["post"]["record"])
    return records


def _real_texts(limit: int = 400, root: Path | None = None) -> list[tuple[str, list[str] | None]]:
    """Post texts from the real Mastodon statuses and Reddit things, with a declared language."""
    texts: list[tuple[str, list[str] | None]] = []
    for status in mastodon_statuses_from_real_payloads(root):
        text = _html_text(str(status.get("content") or ""))
        if text:
            lang = status.get("language")
            texts.append((text[:300], [lang] if isinstance(lang, str) else None))
    for thing in reddit_things_from_real_payloads(limit=4 * limit, root=root):
        data = thing["data"]
        text = str(data.get("title") or data.get("body") or "").strip()
        if text and text not in ("[deleted]", "[removed]") and len(text) <= 300:
            texts.append((text, None))
        if len(texts) >= limit:
            break
    return texts


def jetstream_events_from_real_records(
    n: int,
    *,
    start_time_us: int | None = None,
    step_us: int = 1000,
    authors: int = 50,
    delete_every: int = 0,
    identity_every: int = 0,
    root: Path | None = None,
) -> list[bytes]:
    """``n`` Jetstream events (JSON bytes, ``time_us`` ascending by ``step_us``) built from real data.

    There is no real Jetstream dump in ``../shared`` (see payloads/bluesky/SOURCE.md), so events are
    assembled: every 10th ``commit.record`` is one of the real AT Protocol post records (plain, with
    an unknown extra field, with an image+quote embed), the others are ``app.bsky.feed.post`` records
    whose text (and ``langs``) comes from the real Mastodon statuses (HTML stripped) and Reddit
    titles/comments, for variety of languages and content. The envelope follows the documented
    Jetstream shape (``did``, ``time_us``, ``kind``, ``commit{rev, operation, collection, rkey,
    record, cid}``); dids (a pool of ``authors``), rkeys (TIDs) and cids are synthetic and distinct.
    ``createdAt`` is set to the event's time so posts look recent (retention keeps them).

    ``delete_every=k`` makes every k-th event a ``delete`` commit of an earlier post;
    ``identity_every=k`` makes every k-th event an ``identity`` event (no post). Default start: so
    that the last event is "now".
    """
    if start_time_us is None:
        start_time_us = time.time_ns() // 1000 - n * step_us
    records = _real_bluesky_records(root)
    texts = _real_texts(root=root)
    events: list[bytes] = []
    created: list[tuple[str, str]] = []
    for i in range(n):
        time_us = start_time_us + i * step_us
        did = _synthetic_did(i % max(authors, 1))
        rkey = _tid(time_us, i)
        event: dict[str, Any]
        commit: dict[str, Any]
        record: dict[str, Any]
        if identity_every and i % identity_every == identity_every - 1:
            event = {
                "did": did,
                "time_us": time_us,
                "kind": "identity",
                "identity": {"did": did, "handle": f"author{i % max(authors, 1)}.test", "seq": i, "time": ""},
            }
        elif delete_every and i % delete_every == delete_every - 1 and created:
            old_did, old_rkey = created.pop(0)
            commit = {
                "rev": rkey,
                "operation": "delete",
                "collection": "app.bsky.feed.post",
                "rkey": old_rkey,
            }
            event = {"did": old_did, "time_us": time_us, "kind": "commit", "commit": commit}
        else:
            if i % 10 == 0:
                record = dict(records[(i // 10) % len(records)])
            else:
                text, langs = texts[i % len(texts)]
                record = {"$type": "app.bsky.feed.post", "text": text}
                if langs:
                    record["langs"] = langs
            record["createdAt"] = _iso_from_us(time_us)
            commit = {
                "rev": rkey,
                "operation": "create",
                "collection": "app.bsky.feed.post",
                "rkey": rkey,
                "record": record,
                "cid": _cid(f"{did}/{rkey}"),
            }
            event = {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}
            created.append((did, rkey))
        events.append(orjson.dumps(event))
    return events


def id_key(status_id: str) -> tuple[int, str]:
    """Order of Mastodon status ids (numeric strings, or flake ids elsewhere in the fediverse)."""
    return (len(status_id), status_id)


def mastodon_statuses_from_real_payloads(root: Path | None = None) -> list[dict[str, Any]]:
    """The real Mastodon ``Status`` objects in ``payloads/mastodon/``, oldest id first."""
    path = _root(root) / "mastodon" / "statuses_mastodonpy.jsonl"
    statuses = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return sorted(statuses, key=lambda s: id_key(str(s["id"])))


def reddit_things_from_real_payloads(
    *,
    kind: str | None = None,
    subreddits: Sequence[str] | None = None,
    limit: int | None = None,
    root: Path | None = None,
) -> list[dict[str, Any]]:
    """Real Reddit things ``{"kind", "data"}`` from ``payloads/reddit/things.jsonl`` (file order),
    optionally only one ``kind`` (``t1`` comment, ``t3`` submission) and some ``subreddits``."""
    wanted = {s.lower() for s in subreddits} if subreddits else None
    things: list[dict[str, Any]] = []
    with (_root(root) / "reddit" / "things.jsonl").open("rb") as fh:
        for line in fh:
            if limit is not None and len(things) >= limit:
                break
            thing = orjson.loads(line)
            if kind is not None and thing.get("kind") != kind:
                continue
            if wanted is not None and str(thing["data"].get("subreddit", "")).lower() not in wanted:
                continue
            things.append(thing)
    return things


def real_feed_documents(root: Path | None = None) -> dict[str, bytes]:
    """The real RSS/Atom/JSON Feed documents in ``payloads/rss/`` as ``{file name: bytes}``."""
    folder = _root(root) / "rss"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*/*")) if p.is_file() and p.suffix != ".md"}
