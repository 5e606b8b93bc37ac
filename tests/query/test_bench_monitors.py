"""The monitor benchmark's smoke run (``bench/monitors.py --quick``) works and prints its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from murmur.testing import has_shared_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real texts)")
def test_quick_run_prints_live_and_historical_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "monitors.py"), "--quick", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for n in ("10", "100", "1,000"):
        assert any(line.split()[:1] == [n] for line in out.splitlines()), out
    assert "historical search over 100,000 stored posts" in out
    assert "slowest median" in out
    assert not list(tmp_path.iterdir()), "the benchmark leaves no store behind"
