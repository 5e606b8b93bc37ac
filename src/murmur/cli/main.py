"""``murmur`` — the command-line entry point. Each command group lives in its own module."""

from __future__ import annotations

import logging

import typer

from murmur.cli import demo, ingest, query
from murmur.cli import eval as eval_cmd

app = typer.Typer(
    name="murmur",
    help="Privacy-first, real-time social listening: crowds, never persons.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ingest.register(app)
demo.register(app)
query.register(app)
eval_cmd.register(app)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what murmur does.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


if __name__ == "__main__":
    app()
