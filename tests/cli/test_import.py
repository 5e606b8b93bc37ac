"""``murmur import``: a file that cannot be read at all fails the command (exit 2, naming the file),
while the files that could be read are stored."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from murmur.cli.main import app


def test_an_unreadable_file_fails_the_import_and_the_others_are_stored(tmp_path: Path) -> None:
    config = tmp_path / "murmur.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "m.duckdb"}"\n[enrich]\ntier = "none"\n')
    good = tmp_path / "good.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["storm over the city"], "created_at": ["2026-12-01T10:00:00Z"]}), good)
    bad = tmp_path / "bad.parquet"
    bad.write_text("text,created_at\nnot parquet at all,2026-12-01\n")
    res = CliRunner().invoke(
        app, ["import", str(good), str(bad), "--format", "parquet", "-c", str(config), "--json"]
    )
    assert res.exit_code == 2
    summary = json.loads(res.stdout)
    assert summary["posts"] == 1
    assert list(summary["unread"]) == [f"import:{bad.resolve()}"]
    assert "cannot be read as Parquet" in summary["unread"][f"import:{bad.resolve()}"]
    assert f"error: {bad} cannot be read as Parquet" in " ".join(res.stderr.split())

    ok = CliRunner().invoke(app, ["import", str(good), "-c", str(config), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["unread"] == {}
