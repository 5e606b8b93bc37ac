"""Commands that ask questions: ``search`` (ad-hoc Boolean query over history) and ``monitor``
(``add`` with backfill, ``list``, ``remove``). Thin wrappers over ``murmur.query``."""

from __future__ import annotations

import sys
from contextlib import closing
from datetime import datetime
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from murmur.cli.common import ConfigOpt, DbOpt, JsonOpt, fail, load, out, print_table
from murmur.errors import MurmurError, StoreLockedError
from murmur.query.aggregate import Cell
from murmur.query.monitors import add_monitor, list_monitors, match_count, remove_monitor
from murmur.query.search import SearchResult, parse_time, search
from murmur.store import Store, open_reader

QueryArg = Annotated[
    str, typer.Argument(help="A query, e.g. '\"climate strike\" AND (Berlin OR Hamburg) -sale'.")
]


def _dump(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str).decode() + "\n")


def _count(cell: Cell) -> str:
    return "suppressed (< k authors)" if cell.suppressed else str(cell.posts)


def _print_result(result: SearchResult) -> None:
    out.print(f"[bold]query[/]  {escape(result.query)}")
    out.print(f"[bold]posts[/]  {_count(result.total)}  (k={result.k})")
    for title, cells, dim in (
        ("by platform", result.by_platform, "platform"),
        ("by language", result.by_lang, "lang"),
    ):
        if not cells:
            continue
        table = Table(title=title)
        table.add_column(dim)
        table.add_column("posts", justify="right")
        for c in cells:
            table.add_row(escape(str(c.key[dim])), _count(c))
        print_table(table)
    if result.examples_withheld:
        out.print("example posts withheld: the matches come from fewer than k authors")
    for p in result.posts:
        text = " ".join(str(p["text"]).split())
        out.print(
            f"[dim]{p['created_at']:%Y-%m-%d %H:%M}  {p['platform']}  {p['lang'] or '-'}[/]  "
            + escape(text[:240] + ("…" if len(text) > 240 else ""))
        )


def register(app: typer.Typer) -> None:
    @app.command("search")
    def search_cmd(
        query: QueryArg,
        config: ConfigOpt = None,
        db: DbOpt = None,
        since: Annotated[
            str | None, typer.Option(help="Posts created at or after (ISO date/time, UTC).")
        ] = None,
        until: Annotated[str | None, typer.Option(help="Posts created before (ISO date/time, UTC).")] = None,
        limit: Annotated[int, typer.Option(help="How many example posts to show.")] = 20,
        json_out: JsonOpt = False,
    ) -> None:
        """Search the stored posts: k-anonymous counts (total, by platform, by language) and example
        posts (redacted, no author). Grammar: docs/query-language.md."""
        try:
            cfg = load(config, db)
            start = parse_time(since, option="--since") if since else None
            end = parse_time(until, option="--until") if until else None
            with closing(open_reader(cfg.store.path, memory_limit=cfg.store.memory_limit)) as reader:
                result = search(reader, query, since=start, until=end, limit=limit, k=cfg.privacy.k)
        except MurmurError as exc:
            raise fail(exc) from None
        if json_out:
            _dump(result.as_dict())
        else:
            _print_result(result)

    monitor = typer.Typer(help="Saved queries, matched on every post as it arrives.", no_args_is_help=True)
    app.add_typer(monitor, name="monitor")

    @monitor.command("add")
    def monitor_add(
        name: Annotated[str, typer.Argument(help="Monitor name (letters, digits, _ . -).")],
        query: QueryArg,
        config: ConfigOpt = None,
        db: DbOpt = None,
        backfill: Annotated[bool, typer.Option(help="Match the posts already stored.")] = True,
        json_out: JsonOpt = False,
    ) -> None:
        """Save a monitor and match it against the stored history."""
        try:
            cfg = load(config, db)
            with Store.open(cfg.store.path, memory_limit=cfg.store.memory_limit) as store:
                mon, _ = add_monitor(store.conn, name, query, backfill=backfill)
                matched = match_count(store.conn, mon.monitor_id, k=cfg.privacy.k)
        except StoreLockedError as exc:
            raise fail(exc, ". Stop `murmur run` to change monitors.") from None
        except MurmurError as exc:
            raise fail(exc) from None
        if json_out:
            _dump({"monitor_id": mon.monitor_id, "query": mon.query, "backfilled": matched})
        elif not backfill:
            out.print(
                f"monitor [bold]{escape(mon.monitor_id)}[/] added; stored posts not matched (--no-backfill), "
                "only posts arriving from now on"
            )
        else:
            shown = "suppressed (fewer than k authors)" if matched is None else str(matched)
            out.print(f"monitor [bold]{escape(mon.monitor_id)}[/] added; stored posts matching: {shown}")

    @monitor.command("list")
    def monitor_list(config: ConfigOpt = None, db: DbOpt = None, json_out: JsonOpt = False) -> None:
        """The saved monitors and how many stored posts each matched."""
        try:
            cfg = load(config, db)
            with closing(open_reader(cfg.store.path, memory_limit=cfg.store.memory_limit)) as reader:
                monitors = list_monitors(reader, k=cfg.privacy.k)
        except MurmurError as exc:
            raise fail(exc) from None
        if json_out:
            _dump(
                [
                    {
                        "monitor_id": m.monitor_id,
                        "query": m.query,
                        "created_at": m.created_at,
                        "matches": m.matches,
                    }
                    for m in monitors
                ]
            )
            return
        table = Table(title="monitors")
        for col in ("name", "query", "matches", "since"):
            table.add_column(col)
        for m in monitors:
            created: datetime = m.created_at
            count = "suppressed (< k authors)" if m.matches is None else str(m.matches)
            table.add_row(escape(m.monitor_id), escape(m.query), count, f"{created:%Y-%m-%d %H:%M}")
        print_table(table)

    @monitor.command("remove")
    def monitor_remove(
        name: Annotated[str, typer.Argument(help="Monitor name.")],
        config: ConfigOpt = None,
        db: DbOpt = None,
    ) -> None:
        """Delete a monitor and its stored matches."""
        try:
            cfg = load(config, db)
            with Store.open(cfg.store.path, memory_limit=cfg.store.memory_limit) as store:
                # The count shown is k-anonymous, as in `monitor add` and `monitor list`.
                dropped = match_count(store.conn, name, k=cfg.privacy.k)
                remove_monitor(store.conn, name)
        except StoreLockedError as exc:
            raise fail(exc, ". Stop `murmur run` to change monitors.") from None
        except MurmurError as exc:
            raise fail(exc) from None
        shown = "suppressed (fewer than k authors)" if dropped is None else str(dropped)
        out.print(f"monitor [bold]{escape(name)}[/] removed with its matches: {shown}")
