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
from murmur.errors import ConfigError, MurmurError, StoreLockedError
from murmur.query.aggregate import store_stats
from murmur.runtime import RuntimeStats
from murmur.service import purge_expired, run_service
from murmur.sources.normalize import detect_format, mapping_format
from murmur.sources.normalize.files import FILE_FORMATS, UNKNOWN_AUTHOR, file_columns
from murmur.sources.normalize.mapping import COLUMN_FIELDS, TIME_FROM_ID, find_columns
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
    and the format (with its column mapping) are part of it, so that the same command after an
    interruption resumes where it stopped, while an edited or replaced file, or another ``--format``
    or ``--column``, is read from its start (rows stored already are upserted, not doubled)."""
    try:
        st = path.stat()
    except OSError:  # the file source names the problem
        return f"import:{path.resolve()}"
    return f"import:{path.resolve()}#{fmt}:{st.st_size}:{st.st_mtime_ns}"


def imported_path(source_id: str) -> str:
    """The file a source id of ``import_id`` reads."""
    return source_id.removeprefix("import:").rsplit("#", 1)[0]


def parse_columns(specs: list[str]) -> dict[str, str]:
    """``--column FIELD=NAME`` options → {field: column}; ``ConfigError`` naming the bad one."""
    columns: dict[str, str] = {}
    for spec in specs:
        name, eq, column = spec.partition("=")
        name = name.strip()
        if not eq or not column.strip():
            msg = f"--column {spec!r}: write FIELD=NAME, e.g. --column 'text=Tweet Text'"
            raise ConfigError(msg)
        if name not in COLUMN_FIELDS:
            msg = f"--column {spec!r}: {name!r} is not a field; valid fields: {', '.join(COLUMN_FIELDS)}"
            raise ConfigError(msg)
        columns[name] = column
    return columns


def check_columns(paths: list[Path], fmt: str, columns: dict[str, str], time_from_id: str) -> None:
    """Each file can take the mapping: a JSONL, CSV or Parquet file, whose header (CSV, Parquet) has
    every mapped column. Raises ``ConfigError`` naming the option, the file and its columns."""
    if time_from_id not in TIME_FROM_ID:
        msg = f"--time-from-id must be one of {', '.join(t for t in TIME_FROM_ID if t)}, got {time_from_id!r}"
        raise ConfigError(msg)
    if not columns and not time_from_id:
        return
    option = "--column" if columns else "--time-from-id"
    for path in paths:
        real = detect_format(path) if fmt == "auto" else fmt
        if real not in FILE_FORMATS:
            msg = f"{option} applies to {', '.join(FILE_FORMATS)} files; {path} is {real}"
            raise ConfigError(msg)
        header = file_columns(path, real)
        if header is not None and (missing := find_columns(columns, header)):
            name, column = next(iter(missing.items()))
            msg = (
                f"--column {name}={column}: {path} has no column {column!r}; its columns: {', '.join(header)}"
            )
            raise ConfigError(msg)


def import_files(
    cfg: Config,
    paths: list[Path],
    fmt: str,
    *,
    show_progress: bool,
    columns: dict[str, str] | None = None,
    time_from_id: str = "",
) -> RuntimeStats:
    columns = columns or {}
    check_columns(paths, fmt, columns, time_from_id)
    mapping = {"columns": columns, "time_from_id": time_from_id} if columns or time_from_id else {}
    keyed = mapping_format(fmt, columns, time_from_id)
    sources = [
        SourceConfig(id=import_id(p, keyed), type="file", options={"path": str(p), "format": fmt, **mapping})
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


def quarantine_reasons(cfg: Config, source_ids: list[str], since: datetime) -> list[dict[str, object]]:
    """The three most common reasons rows of these sources were quarantined since ``since``."""
    if not source_ids:
        return []
    marks = ", ".join("?" for _ in source_ids)
    with closing(open_reader(cfg.store.path, memory_limit=cfg.store.memory_limit)) as reader:
        return list(
            reader.query(
                f"SELECT reason, count(*) AS rows FROM quarantine WHERE source_id IN ({marks}) "
                "AND quarantined_at >= ? GROUP BY reason ORDER BY rows DESC, reason LIMIT 3",
                [*source_ids, since],
            ).to_pylist()
        )


def authorless_posts(cfg: Config, since: datetime, platform: str = "file") -> int:
    """Posts stored since ``since`` whose row named no author (``UNKNOWN_AUTHOR``): they share one
    pseudonym, so k-anonymity counts them as one author and suppresses every count over them alone."""
    from murmur.service import build_gate

    key = build_gate(cfg).pseudonyms.key(platform, UNKNOWN_AUTHOR, now=since)
    with closing(open_reader(cfg.store.path, memory_limit=cfg.store.memory_limit)) as reader:
        rows = reader.query(
            "SELECT count(*) AS n FROM posts WHERE author_key = ? AND ingested_at >= ?", [key, since]
        ).to_pylist()
    return int(rows[0]["n"]) if rows else 0


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_cmd(
        paths: Annotated[list[Path], typer.Argument(help="Files to import.", exists=True, dir_okay=False)],
        fmt: Annotated[
            str, typer.Option("--format", "-f", help=f"One of {', '.join(IMPORT_FORMATS)}.")
        ] = "auto",
        column: Annotated[
            list[str] | None,
            typer.Option(
                "--column",
                metavar="FIELD=NAME",
                help=(
                    "Read FIELD from the file's column NAME (JSONL/CSV/Parquet; repeatable), e.g. "
                    f"--column 'text=Tweet Text'. Fields: {', '.join(COLUMN_FIELDS)}."
                ),
            ),
        ] = None,
        time_from_id: Annotated[
            str | None,
            typer.Option(
                "--time-from-id",
                metavar="twitter",
                help=(
                    "Date rows that have no time by their Twitter/X snowflake id "
                    "(opt-in; a row whose id is no snowflake is quarantined)."
                ),
            ),
        ] = None,
        config: ConfigOpt = None,
        db: DbOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Import files of posts (platform payloads, feeds, JSONL/CSV/Parquet) into the store.

        JSONL, CSV and Parquet columns are found by name: the usual columns of twarc, 4CAT,
        Pushshift, Brandwatch, Meltwater and CrisisLex exports, whatever their case, surrounding
        spaces, or spaces, hyphens and underscores ("Tweet Text" is tweet_text). Name any other
        with --column FIELD=NAME (a CSV or Parquet file must have it). A dataset of tweets without
        times can be dated by its tweet ids with --time-from-id twitter; without it such rows are
        quarantined. The summary shows the three most common reasons rows were quarantined
        (--json: quarantine_reasons); a row that has none of a field's columns is quarantined
        with the names of the columns it has (never their values).
        """
        if fmt not in IMPORT_FORMATS:
            msg = f"--format must be one of {', '.join(IMPORT_FORMATS)}, got {fmt!r}"
            raise fail(msg)
        started = datetime.now(UTC)
        try:
            columns = parse_columns(column or [])
            cfg = load(config, db)
            stats = import_files(
                cfg,
                paths,
                fmt,
                show_progress=not json_out and sys.stderr.isatty(),
                columns=columns,
                time_from_id=(time_from_id or "").strip().lower(),
            )
            reasons = quarantine_reasons(cfg, list(stats.sources), started) if stats.quarantined else []
            authorless = authorless_posts(cfg, started) if stats.posts else 0
        except MurmurError as exc:
            raise fail(exc) from None
        unread = {imported_path(sid): c.stopped_by for sid, c in stats.sources.items() if c.stopped_by}
        summary = {
            "posts": stats.posts,
            "deletions": stats.deletions,
            "quarantined": stats.quarantined,
            "authorless": authorless,
        }
        if json_out:
            sys.stdout.write(
                orjson.dumps({**summary, "quarantine_reasons": reasons, "unread": unread}).decode() + "\n"
            )
        else:
            out.print(
                f"imported {stats.posts} posts, {stats.deletions} deletions, "
                f"{stats.quarantined} quarantined into {cfg.store.path}"
            )
            for r in reasons:
                out.print(f"  {r['rows']} quarantined: {r['reason']}", markup=False, highlight=False)
            if authorless:
                out.print(
                    f"  {authorless} posts name no author (no author column): k-anonymity counts them as "
                    f"one author, so counts over them alone are suppressed (k={cfg.privacy.k}); if the "
                    "file has an author column, import it again with --column author=NAME",
                    markup=False,
                    highlight=False,
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
