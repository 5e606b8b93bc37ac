"""Helpers shipped with the library for tests and benchmarks: where the shared real data lives,
and small fakes (list sources, fixed clocks)."""

from __future__ import annotations

import csv
import html
import itertools
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

from murmur.types import RawEvent

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """The read-only folder of real data and docs (``../shared`` beside the repository), or the
    folder named by ``MURMUR_SHARED``."""
    env = os.environ.get("MURMUR_SHARED")
    return Path(env) if env else (REPO_ROOT.parent / "shared").resolve()


def shared_data(*parts: str) -> Path:
    return shared_dir().joinpath("data", *parts)


def has_shared_data() -> bool:
    return shared_data("README.md").exists()


class ListSource:
    """A finite source over a list of payloads: position = index of the event (1-based)."""

    def __init__(self, source_id: str, fmt: str, payloads: list[bytes]) -> None:
        from murmur.sources.base import SourceStats

        self.id = source_id
        self.format = fmt
        self.payloads = payloads
        self.stats = SourceStats()

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        start = int(cursor) if cursor else 0
        for i in range(start, len(self.payloads)):
            self.stats.events += 1
            yield RawEvent(self.id, self.format, self.payloads[i], str(i + 1))


def jetstream_commit(
    i: int, *, text: str = "", op: str = "create", did: str = "did:plc:alice", langs: list[str] | None = None
) -> bytes:
    """A Jetstream commit event for post ``k{i}`` (``op``: ``create`` or ``delete``), as the firehose
    sends it; ``time_us`` grows with ``i`` from the record's ``createdAt`` (2026-11-23T10:00:00Z)."""
    commit: dict[str, object] = {
        "rev": f"r{i}",
        "operation": op,
        "collection": "app.bsky.feed.post",
        "rkey": f"k{i}",
    }
    if op != "delete":
        record: dict[str, object] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": "2026-11-23T10:00:00.000Z",
        }
        if langs is not None:
            record["langs"] = langs
        commit["record"] = record
        commit["cid"] = f"c{i}"
    return orjson.dumps(
        {"did": did, "time_us": 1_795_428_000_000_000 + i, "kind": "commit", "commit": commit}
    )


def real_text_pool(seed: int = 0) -> list[str]:
    """Distinct real social-media texts, shuffled: Reddit comments and posts, XLM-T tweets
    (8 languages), AfriSenti tweets (14 African languages, at most 1,000 each) and TweetEval's
    English tweets (at most 30,000). About 65,000 texts, so a benchmark does not see the same text
    twice (caches would flatter it) and meets a realistic mix of languages and scripts."""
    texts: list[str] = []
    for line in shared_data("payloads", "reddit", "things.jsonl").read_bytes().splitlines():
        d = orjson.loads(line).get("data", {})
        texts.append((d.get("body") or f"{d.get('title') or ''}\n\n{d.get('selftext') or ''}").strip())
    for path in sorted(shared_data("sentiment", "xlmt").glob("*/*_text.txt")):
        texts += path.read_text(encoding="utf-8").split("\n")
    for path in sorted(shared_data("sentiment", "afrisenti").glob("*/train.tsv")):
        with path.open(encoding="utf-8", newline="") as f:
            rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            col = next(rows, []).index("tweet")
            texts += [row[col] for row in itertools.islice(rows, 1000) if len(row) > col]
    emoji = shared_data("sentiment", "tweeteval", "emoji", "train_text.txt")
    texts += emoji.read_text(encoding="utf-8").split("\n")[:30_000]
    pool = list(dict.fromkeys(t.strip() for t in texts if len(t.strip()) > 3))
    random.Random(seed).shuffle(pool)
    return pool


def real_payload_mix(n: int) -> dict[str, list[bytes]]:
    """``n`` raw payloads by format (``reddit``, ``mastodon``, ``jetstream``), for benchmarks and load
    tests: the real recorded payloads, cycled, with fresh ids, Reddit reply trees cut, and each
    carrying a different real text from ``real_text_pool`` (so texts repeat only past ~65,000)."""
    reddit = [
        orjson.loads(line)
        for line in shared_data("payloads", "reddit", "things.jsonl").read_bytes().splitlines()
    ]
    statuses = [
        orjson.loads(line)
        for line in shared_data("payloads", "mastodon", "statuses_mastodonpy.jsonl").read_bytes().splitlines()
    ]
    records = []
    for name in ("post_record.json", "extended_post_record.json"):
        records.append(orjson.loads(shared_data("payloads", "bluesky", name).read_bytes())["value"])
    texts = itertools.cycle(real_text_pool())
    out: dict[str, list[bytes]] = {"reddit": [], "mastodon": [], "jetstream": []}
    per = n // 3
    for i, thing in zip(range(per), itertools.cycle(reddit), strict=False):
        text = next(texts)
        data = dict(thing["data"], id=f"b{i}", name=f"{thing['kind']}_b{i}", replies="")
        if "body" in data:
            data["body"] = text
        else:
            data.update(title=text[:300], selftext=text[300:])
        out["reddit"].append(orjson.dumps({"kind": thing["kind"], "data": data}))
    for i, status in zip(range(per), itertools.cycle(statuses), strict=False):
        content = "".join(f"<p>{html.escape(par)}</p>" for par in next(texts).split("\n") if par.strip())
        out["mastodon"].append(
            orjson.dumps(dict(status, id=str(10**17 + i), uri=f"{status['uri']}/b{i}", content=content))
        )
    base_us = int(time.time() * 1e6) - 10**9
    for i in range(n - 2 * per):
        record = dict(records[i % len(records)], text=next(texts)[:300])
        out["jetstream"].append(
            orjson.dumps(
                {
                    "did": f"did:plc:bench{i % 5000}",
                    "time_us": base_us + i,
                    "kind": "commit",
                    "commit": {
                        "rev": f"r{i}",
                        "operation": "create",
                        "collection": "app.bsky.feed.post",
                        "rkey": f"k{i}",
                        "record": record,
                        "cid": f"c{i}",
                    },
                }
            )
        )
    return out
