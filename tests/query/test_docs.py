"""docs/query-language.md is checked against the code: its example queries parse, its error examples
are the parser's actual messages and carets, and its field and operator tables name what exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from murmur.cli.main import app
from murmur.errors import QuerySyntaxError
from murmur.query.parser import FIELDS, parse
from tests.query.helpers import open_store, post

DOC = Path(__file__).resolve().parents[2] / "docs" / "query-language.md"


def error_examples() -> list[tuple[str, str, str]]:
    """(query, message as documented, caret line) for each ``$ murmur search '…'`` + ``error:`` example."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^\$ murmur search '(.*)'$", line)
        if not m or not lines[i + 1].startswith("error: "):
            continue
        query = m.group(1)
        message: list[str] = []
        j = i + 1
        while lines[j] != f"  {query}":
            message.append(lines[j].removeprefix("error: "))
            j += 1
        out.append((query, " ".join(message), lines[j + 1]))
    return out


def test_the_doc_has_error_examples() -> None:
    assert len(error_examples()) >= 5


@pytest.mark.parametrize(("query", "message", "caret"), error_examples())
def test_documented_errors_are_the_real_ones(query: str, message: str, caret: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    err = info.value
    assert " ".join(message.split()) == f"{err.message} (at position {err.position})"
    assert caret == " " * (2 + err.position) + "^"


def test_documented_example_queries_parse() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("```", 2)[1]
    examples = [line for line in block.splitlines() if line.strip()]
    assert len(examples) == 4
    for q in examples:
        parse(q)
    for q in re.findall(r"^murmur (?:search|monitor add \S+) '([^']+)'", text, flags=re.M):
        parse(q)


def test_every_field_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for field in FIELDS:
        assert f"`{field}:" in text, field


def test_a_documented_query_starting_with_minus_runs_after_double_dash(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    (query,) = re.findall(r"^murmur search -- '(-[^']+)'", text, flags=re.M)
    open_store(tmp_path, [post("p1", "climate strike today")]).close()
    res = CliRunner().invoke(app, ["search", "--db", str(tmp_path / "store.duckdb"), "--", query])
    assert res.exit_code == 0, res.output
    bare = CliRunner().invoke(app, ["search", query, "--db", str(tmp_path / "store.duckdb")])
    assert "No such option: -s" in bare.output  # what the doc says one meets without --
