"""Commands that move posts: ``run`` (the 24/7 service), ``import``, ``stats``, ``purge``."""

from __future__ import annotations

import asyncio
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from murmur.cli.common import ConfigOpt, DbOpt, JsonOpt, err, error, fail, load, out, print_table
from murmur.config import Config, SourceConfig
from murmur.errors import MurmurError, StoreLockedError
from murmur.query.aggregate import store_stats
from murmur.runtime import RuntimeStats
from murmur.service import purge_expired, run_service
from murmur.store import Store, open_reader

IMPORT_FORMATS = ("auto", "jetstream", "mastodon", "reddit", "feed", "jsonl", "csv", "parquet")


def count_rows(path: Path) -> int | None:
    """Rows to expect from a file, for the progress bar (None when unknown, also when the file
    cannot be read: the import itself then says why)."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".csv"):
        with path.open("rb") as fh:
            return sum(1 for _ in fh) - (1 if suffix == ".csv" else 0)
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (OSError, pa.ArrowException):
            return None
    return None


def import_id(path: Path, fmt: str) -> str:
    """The source id (and so the cursor) of importing ``path``: the file's size and modification time
    and the format are part of it, so that the same command after an interruption resumes where it
    stopped, while an edited or replaced file, or another ``--format``, is read from its start
    (rows stored already are upserted, not doubled)."""
    try:
        st = path.stat()
    except OSError:  # the file source names the problem
        return f"import:{path.resolve()}"
    return f"import:{path.resolve()}#{fmt}:{st.st_size}:{st.st_mtime_ns}"


def imported_path(source_id: str) -> str:
    """The file a source id of ``import_id`` reads."""
    return source_id.removeprefix("import:").rsplit("#", 1)[0]


def import_files(cfg: Config, paths: list[Path], fmt: str, *, show_progress: bool) -> RuntimeStats:
    sources = [
        SourceConfig(id=import_id(p, fmt), type="file", options={"path": str(p), "format": fmt})
        for p in paths
    ]
    from murmur.service import build_sources

    built = build_sources(sources)
    if not show_progress:
        return asyncio.run(run_service(cfg, sources=built, serve_reads=False))
    total = sum(n for n in (count_rows(p) for p in paths) if n is not None) or None
    with Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("import", total=total, detail="")

        def on_batch(stats: RuntimeStats) -> None:
            done = sum(c.events + c.quarantined for c in stats.sources.values())
            progress.update(
                task, completed=done, detail=f"{stats.posts} posts, {stats.quarantined} quarantined"
            )

        return asyncio.run(run_service(cfg, sources=built, serve_reads=False, on_batch=on_batch))


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_cmd(
        paths: Annotated[list[Path], typer.Argument(help="Files to import.", exists=True, dir_okay=False)],
        fmt: Annotated[
            str, typer.Option("--format", "-f", help=f"One of {', '.join(IMPORT_FORMATS)}.")
        ] = "auto",
        config: ConfigOpt = None,
        db: DbOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Import files of posts (platform payloads, feeds, JSONL/CSV/Parquet) into the store."""
        if fmt not in IMPORT_FORMATS:
            msg = f"--format must be one of {', '.join(IMPORT_FORMATS)}, got {fmt!r}"
            raise fail(msg)
        try:
            cfg = load(config, db)
            stats = import_files(cfg, paths, fmt, show_progress=not json_out and sys.stderr.isatty())
        except MurmurError as exc:
            raise fail(exc) from None
        unread = {imported_path(sid): c.stopped_by for sid, c in stats.sources.items() if c.stopped_by}
        summary = {"posts": stats.posts, "deletions": stats.deletions, "quarantined": stats.quarantined}
        if json_out:
            sys.stdout.write(orjson.dumps({**summary, "unread": unread}).decode() + "\n")
        else:
            out.print(
                f"imported {stats.posts} posts, {stats.deletions} deletions, "
                f"{stats.quarantined} quarantined into {cfg.store.path}"
            )
        if unread:  # what was read is stored (and resumes from its cursor); the rest failed
            for name, why in unread.items():
                error(why if Path(name).name in why else f"{name}: {why}")
            raise typer.Exit(2)
        if stats.interrupted:  # Ctrl-C / SIGTERM: what was read is stored, the rest was not read
            error("interrupted before the end of the files; run the same command again to import the rest")
            raise typer.Exit(130)

    @app.command("run")
    def run_cmd(config: ConfigOpt = None, db: DbOpt = None) -> None:
        """Run the 24/7 service: follow every configured source into the store until SIGTERM."""
        try:
            cfg = load(config, db)
            if not cfg.sources:
                msg = "no [[sources]] in the config: nothing to follow"
                raise fail(msg)
            stats = asyncio.run(run_service(cfg))
        except MurmurError as exc:
            raise fail(exc) from None
        err.print(
            f"stopped: {stats.posts} posts, {stats.deletions} deletions, {stats.quarantined} quarantined"
        )

    @app.command("stats")
    def stats_cmd(config: ConfigOpt = None, db: DbOpt = None, json_out: JsonOpt = False) -> None:
        """Counts by platform and language (k-anonymous), quarantined payloads, source cursors."""
        try:
            cfg = load(config, db)
            with closing(open_reader(cfg.store.path, memory_limit=cfg.store.memory_limit)) as reader:
                result = store_stats(reader, k=cfg.privacy.k)
        except MurmurError as exc:
            raise fail(exc) from None
        status = Path(f"{cfg.store.path}.status.json")
        if status.exists():
            result["service"] = orjson.loads(status.read_bytes())
        if json_out:
            sys.stdout.write(orjson.dumps(result, default=str).decode() + "\n")
            return
        print_stats(result)

    @app.command("purge")
    def purge_cmd(
        config: ConfigOpt = None,
        db: DbOpt = None,
        older_than_days: Annotated[
            int | None,
            typer.Option(min=0, help="Purge posts older than this (default: privacy.retention_days)."),
        ] = None,
    ) -> None:
        """Delete posts (and everything derived from them) past the retention period."""
        try:
            cfg = load(config, db)
            days = older_than_days if older_than_days is not None else cfg.privacy.retention_days
            if not Path(cfg.store.path).exists():  # Store.open would create an empty store
                msg = f"store {cfg.store.path} does not exist: nothing to purge"
                raise fail(msg)
            with Store.open(cfg.store.path, memory_limit=cfg.store.memory_limit) as store:
                removed = purge_expired(store, days)
        except StoreLockedError as exc:
            raise fail(exc, ". The running service purges on its own every hour.") from None
        except MurmurError as exc:
            raise fail(exc) from None
        cutoff = (datetime.now(UTC) - timedelta(days=days)).date()
        out.print(f"purged before {cutoff}: " + ", ".join(f"{n} {t}" for t, n in removed.items()))


def print_stats(result: dict[str, object]) -> None:
    k, quarantined = result["k"], result["quarantined"]
    if result["posts"] is None:
        out.print(f"posts: suppressed (< k authors, k={k}), {quarantined} quarantined")
    else:
        out.print(f"[bold]{result['posts']}[/] posts (k={k}), {quarantined} quarantined")
    for title, key, dim in (
        ("by platform", "by_platform", "platform"),
        ("by language", "by_language", "lang"),
    ):
        table = Table(title=title)
        table.add_column(dim)
        table.add_column("posts", justify="right")
        rows = result[key]
        assert isinstance(rows, list)
        for row in rows:
            table.add_row(
                str(row[dim]), "suppressed (< k authors)" if row["suppressed"] else str(row["posts"])
            )
        print_table(table)
    service = result.get("service")
    if isinstance(service, dict) and service.get("awaiting_backfill") is not None:
        out.print(
            f"neural backfill: {service.get('backfilled', 0)} posts backfilled, "
            f"{service['awaiting_backfill']} awaiting backfill (labelled by the firehose tier under overload)"
        )
