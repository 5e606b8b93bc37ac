"""``murmur eval``: measured accuracy of the enrichment models on labelled data, beside a named peer.

    murmur eval langid ../shared/data/langid/lingua/sentences --json
    murmur eval sentiment ../shared/data/sentiment/xlmt --format xlmt --split val [--tier firehose]

Thin layer over ``murmur.enrich.evaluate``; the progress bar goes to stderr, so ``--json`` output on
stdout stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from murmur.cli.common import err, fail, out, print_table
from murmur.enrich.evaluate import Report, count_items, eval_langid, eval_sentiment
from murmur.errors import MurmurError

eval_app = typer.Typer(help="Measure the enrichment models on labelled data, beside a named peer.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
MarkdownOpt = Annotated[bool, typer.Option("--markdown", help="A Markdown table on stdout.")]
PathArg = Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder of labelled data.")]


@contextmanager
def _progress(total: int, what: str, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda n: None
        return
    with Progress(
        TextColumn(f"[bold]{escape(what)}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def markdown(report: Report) -> str:
    """The report as a Markdown table (docs/enrichment.md is made of these)."""

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    head = ["language", "n", report.ours_name, report.peer_name, *report.extra_names]
    lines = [row(head), "|" + "---|" * len(head)]
    for r in report.rows:
        extra = [f"{r.extra.get(n, float('nan')):.3f}" for n in report.extra_names]
        lines.append(row([r.language, str(r.n), f"{r.ours:.3f}", f"{r.peer:.3f}", *extra]))
    extra = [f"{report.mean_extra(n):.3f}" for n in report.extra_names]
    total = str(sum(r.n for r in report.rows))
    lines.append(row(["**mean**", total, f"**{report.mean_ours:.3f}**", f"{report.mean_peer:.3f}", *extra]))
    info = [f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in report.info.items()]
    if info:
        lines += ["", "; ".join(info)]
    return "\n".join(lines)


def _emit(report: Report, *, as_json: bool, as_markdown: bool = False) -> None:
    if as_json:
        typer.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    if as_markdown:
        typer.echo(markdown(report))
        return
    table = Table(title=f"{report.task}: {report.metric}", show_lines=False)
    table.add_column("language")
    table.add_column("n", justify="right")
    table.add_column(report.ours_name, justify="right")
    table.add_column(report.peer_name, justify="right")
    for name in report.extra_names:
        table.add_column(name, justify="right")
    for r in report.rows:
        table.add_row(
            r.language,
            str(r.n),
            f"{r.ours:.3f}",
            f"{r.peer:.3f}",
            *(f"{r.extra.get(n, float('nan')):.3f}" for n in report.extra_names),
        )
    table.add_row(
        "[bold]mean",
        str(sum(r.n for r in report.rows)),
        f"[bold]{report.mean_ours:.3f}",
        f"{report.mean_peer:.3f}",
        *(f"{report.mean_extra(n):.3f}" for n in report.extra_names),
    )
    print_table(table)
    for key, value in report.info.items():
        out.print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


@eval_app.command("langid")
def langid_cmd(
    path: PathArg,
    per_language: Annotated[
        int | None, typer.Option("--per-language", min=1, help="Use only the first N texts of each language.")
    ] = None,
    as_json: JsonOpt = False,
    as_markdown: MarkdownOpt = False,
) -> None:
    """Language-ID accuracy per language (files <iso639-1>.txt, one text per line) vs pycld2 alone."""
    try:
        total = count_items(path, "langid")
        if per_language:
            total = min(total, per_language * len(list(path.glob("*.txt"))))
        with _progress(total, "language ID", enabled=err.is_terminal) as advance:
            report = eval_langid(path, per_language=per_language, progress=advance)
    except (MurmurError, FileNotFoundError, ValueError) as exc:
        raise fail(exc) from None
    _emit(report, as_json=as_json, as_markdown=as_markdown)


@eval_app.command("sentiment")
def sentiment_cmd(
    path: PathArg,
    fmt: Annotated[
        Literal["xlmt", "afrisenti"],
        typer.Option(
            "--format", help="xlmt: <language>/<split>_text.txt + _labels.txt; afrisenti: <lang>/<split>.tsv"
        ),
    ] = "xlmt",
    split: Annotated[str, typer.Option("--split", help="val, dev or test.")] = "val",
    tier: Annotated[
        Literal["firehose", "neural"], typer.Option("--tier", help="Which tier's model.")
    ] = "firehose",
    as_json: JsonOpt = False,
    as_markdown: MarkdownOpt = False,
) -> None:
    """Sentiment macro-F1 per language vs VADER and the majority class."""
    try:
        total = count_items(path, "sentiment", fmt=fmt, split=split)
        with _progress(total, f"sentiment ({tier})", enabled=err.is_terminal) as advance:
            report = eval_sentiment(path, fmt=fmt, split=split, tier=tier, progress=advance)
    except (MurmurError, FileNotFoundError, ValueError) as exc:
        raise fail(exc) from None
    _emit(report, as_json=as_json, as_markdown=as_markdown)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
