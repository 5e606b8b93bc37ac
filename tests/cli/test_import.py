"""``murmur import``: a file that cannot be read at all fails the command (exit 2, naming the file),
while the files that could be read are stored."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from murmur.cli import ingest
from murmur.cli.main import app
from murmur.config import Config
from murmur.runtime import RuntimeStats
from murmur.store import Store


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
    assert list(summary["unread"]) == [str(bad.resolve())]
    assert "cannot be read as Parquet" in summary["unread"][str(bad.resolve())]
    assert f"error: {bad} cannot be read as Parquet" in " ".join(res.stderr.split())

    ok = CliRunner().invoke(app, ["import", str(good), "-c", str(config), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["unread"] == {}


def test_an_import_stopped_by_ctrl_c_says_so_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(
        b"".join(
            orjson.dumps({"id": str(i), "text": f"storm {i}", "created_at": "2026-12-01T10:00:00Z"}) + b"\n"
            for i in range(3000)
        )
    )
    from murmur.service import run_service as real

    async def ctrl_c_after_the_first_batch(cfg: Config, **kw: Any) -> RuntimeStats:
        kw["on_batch"] = lambda stats: os.kill(os.getpid(), signal.SIGINT)
        kw["batch_size"] = 100  # a hand-off of 1,000 events: the file is not all read at the first batch
        return await real(cfg, **kw)

    monkeypatch.setattr(ingest, "run_service", ctrl_c_after_the_first_batch)
    config = tmp_path / "murmur.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "m.duckdb"}"\n[enrich]\ntier = "none"\n')
    res = CliRunner().invoke(app, ["import", str(rows), "-c", str(config), "--json"])
    # It printed the partial count and exited 0, as if the whole file had been imported.
    assert res.exit_code == 130
    assert json.loads(res.stdout)["posts"] < 3000
    assert "interrupted" in res.stderr
    monkeypatch.setattr(ingest, "run_service", real)
    rest = CliRunner().invoke(app, ["import", str(rows), "-c", str(config), "--json"])
    assert rest.exit_code == 0, rest.output
    assert json.loads(res.stdout)["posts"] + json.loads(rest.stdout)["posts"] == 3000


def test_an_edited_file_is_read_again_and_an_unchanged_one_resumes(tmp_path: Path) -> None:
    # The cursor used to be keyed by the path alone: a file fixed after a first import (or read
    # again with another --format) imported nothing, and said "0 posts" with exit 0.
    config = tmp_path / "murmur.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "m.duckdb"}"\n[enrich]\ntier = "none"\n')
    rows = tmp_path / "rows.jsonl"
    row = '{{"id": "{0}", "text": "flood warning {0}", "created_at": "2026-12-01T10:00:00Z"}}\n'
    rows.write_text(row.format(1) + '{"id": "2", "txet": "a typo"}\n')

    def imported() -> dict[str, object]:
        res = CliRunner().invoke(app, ["import", str(rows), "-c", str(config), "--json"])
        assert res.exit_code == 0, res.output
        return dict(json.loads(res.stdout))

    assert (imported()["posts"], imported()["posts"]) == (1, 0)  # the same file again: nothing new
    rows.write_text(row.format(1) + row.format(2) + row.format(3))  # the typo fixed, a row added
    assert imported()["posts"] == 3  # read from the start; row 1 is upserted, not doubled
    with Store.open(tmp_path / "m.duckdb") as store:
        assert store.conn.execute("SELECT count(*) FROM posts").fetchone() == (3,)


def crisislex(tmp_path: Path, rows: int = 30) -> Path:
    """A CSV shaped like CrisisLex T26 (spaces after commas, no time column), of tweet ids."""
    path = tmp_path / "boston.csv"
    lines = ["Tweet ID, Tweet Text, Information Source"]
    for i in range(rows):  # ids of 2013-04-15, a second apart
        lines.append(f'"{(i * 1000 + 77_168_000_000) << 22}","explosion at the finish line {i}",Eyewitness')
    path.write_text("\n".join(lines) + "\n")
    return path


def import_json(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    config = tmp_path / "murmur.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "m.duckdb"}"\n[enrich]\ntier = "none"\n')
    res = CliRunner().invoke(app, ["import", *args, "-c", str(config), "--json"])
    return res.exit_code, json.loads(res.stdout) if res.exit_code == 0 else {}, " ".join(res.stderr.split())


def test_an_undated_export_says_which_columns_it_has_and_imports_by_tweet_id(tmp_path: Path) -> None:
    path = crisislex(tmp_path)
    code, summary, _ = import_json(tmp_path, str(path))
    assert code == 0
    assert (summary["posts"], summary["quarantined"]) == (0, 30)
    [reason] = summary["quarantine_reasons"]
    assert reason["rows"] == 30
    assert "the row has no time" in reason["reason"]
    assert "its columns: Tweet ID, Tweet Text, Information Source" in reason["reason"]
    assert "--time-from-id twitter" in reason["reason"]
    assert "explosion" not in reason["reason"]  # column names, never values

    # the same file again with the opt-in: read from its start, not resumed after its last row
    code, summary, _ = import_json(tmp_path, str(path), "--time-from-id", "twitter")
    assert code == 0
    assert (summary["posts"], summary["quarantined"], summary["quarantine_reasons"]) == (30, 0, [])
    with Store.open(tmp_path / "m.duckdb") as store:
        days = store.conn.execute("SELECT DISTINCT created_at::DATE::VARCHAR, text FROM posts").fetchall()
    assert {d for d, _ in days} == {"2013-04-15"}  # (77_168_000_000 + 1288834974657) ms
    assert "explosion at the finish line 7" in {t for _, t in days}


def test_column_options_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    path = crisislex(tmp_path)
    code, _, stderr = import_json(tmp_path, str(path), "--column", "text=Tweet Txt")
    assert code != 0
    assert f"--column text=Tweet Txt: {path} has no column 'Tweet Txt'" in stderr
    assert "its columns: Tweet ID, Tweet Text, Information Source" in stderr
    code, _, stderr = import_json(tmp_path, str(path), "--column", "txt=Tweet Text")
    assert code != 0
    assert "'txt' is not a field; valid fields: text, id, created_at" in stderr
    code, _, stderr = import_json(tmp_path, str(path), "--column", "text")
    assert "write FIELD=NAME" in stderr
    code, _, stderr = import_json(tmp_path, str(path), "--time-from-id", "facebook")
    assert "--time-from-id must be one of twitter" in stderr
    assert not (tmp_path / "m.duckdb").exists() or code != 0

    code, summary, _ = import_json(
        tmp_path, str(path), "--column", "text=Information Source", "--column", "created_at=Tweet ID"
    )
    assert code == 0, summary
    # a tweet id is no time (it is not Unix time either): every row is refused, with that reason
    assert summary["posts"] == 0
    code, summary, _ = import_json(
        tmp_path, str(path), "--column", "community=Information Source", "--time-from-id", "twitter"
    )
    assert (code, summary["posts"]) == (0, 30)


def test_an_export_without_authors_says_its_counts_will_be_suppressed(tmp_path: Path) -> None:
    # A research export without an author column (CrisisLex) imported fine, and then every count was
    # "suppressed" with no word why: all its rows share one pseudonym, k-anonymity's one author.
    config = tmp_path / "murmur.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "m.duckdb"}"\n[enrich]\ntier = "none"\n')
    rows = "".join(f"storm number {i},2026-12-01T10:00:{i:02d}Z,user{i}\n" for i in range(6))
    anonymous = tmp_path / "anonymous.csv"
    anonymous.write_text("text,created_at\n" + "".join(r.rsplit(",", 1)[0] + "\n" for r in rows.splitlines()))
    named = tmp_path / "named.csv"
    named.write_text("text,created_at,author\n" + rows)
    runner = CliRunner()
    res = runner.invoke(app, ["import", str(anonymous), "-c", str(config), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["authorless"] == 6
    res = runner.invoke(app, ["import", str(anonymous), "-c", str(config)])  # read again: a new run
    assert "--column author=NAME" not in res.stdout  # nothing new was stored by this run
    res = runner.invoke(app, ["import", str(named), "-c", str(config), "--json"])
    assert json.loads(res.stdout)["authorless"] == 0
    text = tmp_path / "other.csv"
    text.write_text("text,created_at\nrain again,2026-12-02T10:00:00Z\n")
    res = runner.invoke(app, ["import", str(text), "-c", str(config)])
    assert "1 posts name no author" in res.stdout.replace("\n", " ")
    assert "--column author=NAME" in res.stdout.replace("\n", " ")
