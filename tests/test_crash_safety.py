"""Crash safety: ``murmur run`` killed with SIGKILL at random points, restarted each time, ends with
exactly the expected posts — none missing, none duplicated, deletions applied."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import psutil
import pytest

from murmur.privacy.pseudonym import Pseudonymizer
from murmur.testing import has_shared_data
from murmur.testing_servers import JetstreamReplayServer, jetstream_events_from_real_records

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real payloads)")

EVENTS = 4000
KILLS = 6


def expected_raw_ids(events: list[bytes]) -> set[str]:
    alive: dict[str, None] = {}
    for raw in events:
        ev = orjson.loads(raw)
        if ev.get("kind") != "commit":
            continue
        commit = ev["commit"]
        uri = f"at://{ev['did']}/app.bsky.feed.post/{commit['rkey']}"
        if commit["operation"] == "delete":
            alive.pop(uri, None)
        else:
            alive[uri] = None
    return set(alive)


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_service_outlives_the_test() -> Iterator[None]:
    yield
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    STARTED.clear()


def start_service(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "murmur.cli.main", "run", "--config", str(config)],
            stdout=fh,
            stderr=fh,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    STARTED.append(proc)
    return proc


def stored_cursor(db: Path) -> int:
    """Read the service's committed cursor through its read socket (the store is held by it)."""
    code = (
        "from murmur.store import open_reader\n"
        f"r = open_reader({str(db)!r})\n"
        "rows = r.query(\"SELECT position FROM cursors WHERE source_id = 'bsky'\").to_pylist()\n"
        "print(rows[0]['position'] if rows else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return int(res.stdout.strip() or 0) if res.returncode == 0 else -1


def orphaned_workers(since: float) -> list[int]:
    """Worker processes of a killed service that outlived it (their parent is gone: ppid 1)."""
    found = []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline", "create_time"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["ppid"] == 1 and "spawn_main" in cmd and proc.info["create_time"] >= since:
            found.append(proc.info["pid"])
    return found


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    started = time.time() - 1
    events = jetstream_events_from_real_records(EVENTS, delete_every=25, identity_every=40)
    last_time_us = max(orjson.loads(e)["time_us"] for e in events)
    db = tmp_path / "crash.duckdb"
    config = tmp_path / "murmur.toml"
    log = tmp_path / "service.log"
    rng = random.Random(20261123)
    # ~1,200 events/s: one full pass takes ~3.5 s, so the kills land mid-stream.
    with JetstreamReplayServer(events, interval=0.0008) as server:
        config.write_text(
            f'[store]\npath = "{db}"\n[enrich]\ntier = "none"\n'
            f'[[sources]]\nid = "bsky"\ntype = "jetstream"\nurl = "{server.url}"\n'
            "rewind_seconds = 0.5\nbackoff_initial = 0.05\nbackoff_max = 0.5\n"
        )
        cursors: list[int] = []
        for _ in range(KILLS):
            connections = len(server.cursors)
            proc = start_service(config, log)
            # The kill lands at a random point after the service is up (connected): counted from its
            # start instead, a busy machine's slower start-up made every kill land before the first
            # batch was stored.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(server.cursors) == connections:
                time.sleep(0.05)
            time.sleep(rng.uniform(1.5, 4.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            with duckdb.connect(str(db), read_only=True) as conn:
                row = conn.execute("SELECT position FROM cursors WHERE source_id = 'bsky'").fetchone()
            cursors.append(int(row[0]) if row else 0)
        # The last run goes to the end of the stream, then stops cleanly on SIGTERM.
        connections = len(server.cursors)
        proc = start_service(config, log)
        deadline = time.monotonic() + 120
        # Up (signal handlers installed) once it has connected to the server; then to the end.
        while time.monotonic() < deadline and len(server.cursors) == connections:
            time.sleep(0.1)
        while time.monotonic() < deadline and stored_cursor(db) < last_time_us:
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        assert len(server.cursors) >= 3, "the service reconnected after kills"
    # Progress was made between kills, and at least one kill landed mid-stream.
    assert any(0 < c < last_time_us for c in cursors), cursors
    keys = Pseudonymizer(Path(f"{db}.keys"), period_days=30)
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    expected = {keys.post_key("bluesky", uri, now=now) for uri in expected_raw_ids(events)}
    with duckdb.connect(str(db), read_only=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT post_id FROM posts").fetchall()]
        position = conn.execute("SELECT position FROM cursors").fetchone()
    assert len(ids) == len(set(ids)), "duplicated posts"
    assert set(ids) == expected, f"missing {len(expected - set(ids))}, unexpected {len(set(ids) - expected)}"
    assert position is not None
    assert int(position[0]) == last_time_us
    # The killed services' worker processes left with them.
    deadline = time.monotonic() + 10
    while orphaned_workers(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert orphaned_workers(started) == []
