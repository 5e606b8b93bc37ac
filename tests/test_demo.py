"""``make demo`` end to end: the bundled sample, four local platform servers, the real sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from murmur.cli.main import app


def test_demo_follows_every_platform_and_summarises(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "murmur.cli.main", "demo", "--json", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    platforms = {row["platform"]: row["posts"] for row in summary["by_platform"]}
    assert set(platforms) == {"bluesky", "mastodon", "reddit", "feed"}
    assert summary["posts"] > 4000
    assert summary["run"]["deletions"] > 0  # Jetstream delete commits were applied
    assert {row["sentiment"] for row in summary["by_sentiment"]} >= {"negative", "neutral", "positive"}
    monitors = {row["monitor"]: row["posts"] for row in summary["monitors"]}
    assert set(monitors) == {"games", "politics", "video-links", "weather"}
    assert all(n is None or n > 0 for n in monitors.values())
    # Nothing personal in what the demo prints: no raw Bluesky ids, no e-mail addresses.
    assert "did:plc:" not in done.stdout


def test_demo_refuses_a_workdir_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    res = CliRunner().invoke(app, ["demo", "--json", "--workdir", str(tmp_path)])
    assert res.exit_code == 2
    assert "holds other files (notes.txt)" in res.output
    assert (tmp_path / "notes.txt").read_text() == "mine"  # the demo deleted its workdir, whatever it held


def test_demo_with_an_unknown_tier_fails_before_it_deletes_the_earlier_demo(tmp_path: Path) -> None:
    earlier = tmp_path / "demo.duckdb"
    earlier.write_bytes(b"an earlier demo's store")
    res = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path), "--tier", "fast"])
    assert res.exit_code == 2
    assert "--tier" in res.output
    assert earlier.read_bytes() == b"an earlier demo's store"  # it was deleted, then the run failed
