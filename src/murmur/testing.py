"""Helpers shipped with the library for tests and benchmarks: where the shared real data lives,
and small fakes (list sources, fixed clocks)."""

from __future__ import annotations

import itertools
import os
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


def real_payload_mix(n: int) -> dict[str, list[bytes]]:
    """``n`` raw payloads by format (``reddit``, ``mastodon``, ``jetstream``), cycled from the real
    recorded payloads with fresh ids (and Reddit reply trees cut), for benchmarks and load tests."""
    reddit = [orjson.loads(line) for line in shared_data("payloads", "reddit", "things.jsonl").open("rb")]
    statuses = [
        orjson.loads(line)
        for line in shared_data("payloads", "mastodon", "statuses_mastodonpy.jsonl").open("rb")
    ]
    records = []
    for name in ("post_record.json", "extended_post_record.json"):
        records.append(orjson.loads(shared_data("payloads", "bluesky", name).read_bytes())["value"])
    texts = [t["data"].get("body") or t["data"].get("title") or "" for t in reddit]
    out: dict[str, list[bytes]] = {"reddit": [], "mastodon": [], "jetstream": []}
    per = n // 3
    for i, thing in zip(range(per), itertools.cycle(reddit), strict=False):
        data = dict(thing["data"], id=f"b{i}", name=f"{thing['kind']}_b{i}", replies="")
        out["reddit"].append(orjson.dumps({"kind": thing["kind"], "data": data}))
    for i, status in zip(range(per), itertools.cycle(statuses), strict=False):
        out["mastodon"].append(orjson.dumps(dict(status, id=str(10**17 + i), uri=f"{status['uri']}/b{i}")))
    base_us = int(time.time() * 1e6) - 10**9
    for i in range(n - 2 * per):
        record = dict(records[i % len(records)], text=texts[i % len(texts)][:300])
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
