"""What every command shares: the two consoles, the common options, config loading and errors.

Errors go to stderr unwrapped (``soft_wrap``): a path or a query's caret line stays whole and
copyable, and the terminal wraps it, not rich.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from murmur.config import Config, load_config

err = Console(stderr=True, soft_wrap=True)
out = Console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file.")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="Store file (default: from config).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def print_table(table: Table) -> None:
    """Print ``table`` on stdout; into a pipe or a file (CI, ``| tee``) at its own width, where rich
    would assume 80 columns and cut its model names and languages to "murmur.…"."""
    if out.is_terminal:
        out.print(table)
        return
    natural = out.measure(table, options=out.options.update_width(1_000)).maximum
    Console(width=max(out.width, natural), no_color=out.no_color, highlight=False).print(table)


def error(message: object) -> None:
    """Print ``error: <message>`` on stderr (as plain text: no rich markup is read in it)."""
    err.print(f"[bold red]error:[/] {escape(str(message))}")


def fail(exc: Exception | str, hint: str = "") -> typer.Exit:
    """Print ``error: <exc><hint>`` on stderr; the caller raises the returned exit (status 2)."""
    error(f"{exc}{hint}")
    return typer.Exit(2)


def load(config: Path | None, db: Path | None) -> Config:
    """The config file (or the defaults), with ``--db`` overriding the store path."""
    cfg = load_config(config)
    if db is not None:
        cfg.store.path = str(db)
    return cfg
