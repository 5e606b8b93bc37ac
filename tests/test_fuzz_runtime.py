"""Bad input end to end: 10,000 malformed or hostile payloads through the runtime.

Zero crashes; each one is quarantined with a reason (or, when a mutation happens to be valid, stored
as a post); the valid posts interleaved with them are all stored.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest

from murmur.privacy import PrivacyGate
from murmur.runtime import Processor, Runtime
from murmur.store import Store
from murmur.testing import ListSource, has_shared_data
from tests.sources.fuzz_corpus import hostile_payloads
from tests.test_runtime import jetstream

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real payloads as seeds)")

HOSTILE = 10_000


def test_ten_thousand_hostile_payloads_are_quarantined_and_the_stream_goes_on(tmp_path: Path) -> None:
    by_format: dict[str, list[bytes]] = defaultdict(list)
    sentinels = 0
    for i, (fmt, payload) in enumerate(hostile_payloads(HOSTILE, seed=7)):
        by_format[fmt].append(payload)
        if i % 50 == 0:  # a valid post between the hostile ones, in its own stream
            by_format["jetstream"].append(jetstream(10_000 + i, text=f"sentinel post {i}"))
            sentinels += 1
    sources = [ListSource(f"fuzz-{fmt}", fmt, items) for fmt, items in by_format.items()]
    with Store.open(tmp_path / "fuzz.duckdb") as store:
        runtime = Runtime(
            store, sources, Processor(PrivacyGate(key_file=None)), batch_size=500, flush_seconds=0.01
        )
        stats = asyncio.run(runtime.run())
        total = sum(len(v) for v in by_format.values())
        handled = sum(c.events + c.quarantined for c in stats.sources.values())
        assert handled == total, "every payload is either normalized or quarantined"
        assert stats.quarantined > HOSTILE * 0.5
        reasons = store.conn.execute(
            "SELECT count(*), count(reason) FILTER (WHERE length(reason) > 5) FROM quarantine"
        )
        row = reasons.fetchone()
        assert row is not None
        assert row[0] == stats.quarantined
        assert row[1] == row[0], "every quarantined payload has a reason"
        kept = store.conn.execute("SELECT count(*) FROM posts WHERE text LIKE 'sentinel post %'").fetchone()
        assert kept == (sentinels,)
        for source in sources:
            assert store.cursor(source.id) == str(len(source.payloads))
