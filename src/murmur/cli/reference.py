"""The CLI reference, rendered from the typer app: ``python -m murmur.cli.reference > docs/cli.md``.

It walks the command tree that typer builds (``typer.main.get_command``) and writes plain Markdown
itself: every command and sub-command in registration order, its help, its arguments and its options
with their defaults. Nothing goes through rich's help screens, so the output depends on the code only,
never on the terminal's width or colours. ``tests/test_docs.py`` fails when docs/cli.md and this
output differ, so the reference cannot go stale.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal, get_args, get_origin

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

REGENERATE = "python -m murmur.cli.reference > docs/cli.md"
"""The command that rewrites docs/cli.md (run from the repository root)."""

_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.DOTALL)
_NO_DEFAULT = "—"


def _escape(text: str, *, in_table: bool = False) -> str:
    """Markdown-safe prose: ``<`` and ``*`` escaped outside code spans (``<lang>`` would read as an HTML
    tag), and in tables ``|`` escaped and lines joined."""
    out: list[str] = []
    last = 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[last : m.start()]))
        out.append(m.group())
        last = m.end()
    out.append(_escape_plain(text[last:]))
    result = "".join(out)
    if in_table:
        result = " ".join(result.split()).replace("|", "\\|")
    return result


def _escape_plain(text: str) -> str:
    return text.replace("\\", "\\\\").replace("<", "\\<").replace("*", "\\*")


def _help_text(help_text: str | None) -> str:
    """A command's help as click shows it: dedented, cut at a form feed."""
    if not help_text:
        return ""
    return inspect.cleandoc(help_text).partition("\f")[0].strip()


def _summary(help_text: str | None) -> str:
    """The first paragraph of a help text, on one line."""
    first = _help_text(help_text).split("\n\n", 1)[0]
    return " ".join(first.split())


def _anchor(title: str) -> str:
    """GitHub's heading anchor for a heading made of ``title`` in backticks."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _index_row(title: str, help_text: str | None) -> str:
    return f"| [`{title}`](#{_anchor(title)}) | {_escape(_summary(help_text), in_table=True)} |"


def walk(command: Any, path: tuple[str, ...] = ("murmur",)) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every visible command below ``command`` (itself first), depth first, in registration order."""
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from walk(sub, (*path, name))


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{c}`" for c in get_args(annotation))
    if origin in (list, tuple, set):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return (_type_name(args[0]) if args else "text") + " …"
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return " \\| ".join(f"`{m.value}`" for m in annotation)
        if issubclass(annotation, bool):
            return "flag"
        if issubclass(annotation, int):
            return "integer"
        if issubclass(annotation, float):
            return "number"
        if issubclass(annotation, PurePath):
            return "path"
        if issubclass(annotation, str):
            return "text"
        return annotation.__name__
    return str(annotation)


def _param_type(param: TyperArgument | TyperOption) -> str:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is None:
        return "flag" if isinstance(param, TyperOption) and param.is_flag else "text"
    if isinstance(param, TyperOption) and param.is_flag:
        return "flag"
    return _type_name(annotation)


def _value(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, PurePath):
        value = value.as_posix()
    return f"`{value}`"


def _default(param: TyperArgument | TyperOption) -> str:
    if param.required:
        return "required"
    show = param.show_default
    if isinstance(show, str):
        return _escape(show, in_table=True)
    if show is False:
        return _NO_DEFAULT
    value = param.default
    if callable(value):
        return "(computed)"
    if isinstance(param, TyperOption) and param.is_flag:
        if param.secondary_opts:
            return f"`{param.opts[0] if value else param.secondary_opts[0]}`"
        return "on" if value else "off"
    if value is None:
        return _NO_DEFAULT
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) if value else _NO_DEFAULT
    return _value(value)


def _describe(param: TyperArgument | TyperOption) -> str:
    text = _escape(param.help or "", in_table=True)
    envvar = param.envvar
    if envvar:
        names = [envvar] if isinstance(envvar, str) else list(envvar)
        text = f"{text} (environment: {', '.join(f'`{n}`' for n in names)})".strip()
    return text


def _usage(path: Sequence[str], command: Any, arguments: Sequence[TyperArgument]) -> str:
    pieces = [*path, "[OPTIONS]"]
    for arg in arguments:
        name = (arg.metavar or arg.name).upper()
        piece = name if arg.required else f"[{name}]"
        pieces.append(piece + ("..." if arg.nargs != 1 else ""))
    if isinstance(command, TyperGroup):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def _command_section(path: tuple[str, ...], command: Any) -> list[str]:
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    arguments = [p for p in params if isinstance(p, TyperArgument)]
    options = [p for p in params if isinstance(p, TyperOption)]
    title = " ".join(path)
    lines = [f"## `{title}`", ""]
    help_text = _help_text(command.help)
    if help_text:
        lines += [_escape(help_text), ""]
    if command.deprecated:
        lines += ["**Deprecated.**", ""]
    lines += ["```", _usage(path, command, arguments), "```", ""]
    if isinstance(command, TyperGroup) and len(path) > 1:  # the page's index lists the root's commands
        visible = [(name, sub) for name, sub in command.commands.items() if not sub.hidden]
        if visible:
            lines += ["| command | what it does |", "|---|---|"]
            for name, sub in visible:
                lines.append(_index_row(f"{title} {name}", sub.help))
            lines.append("")
    if arguments:
        lines += ["| argument | type | default | description |", "|---|---|---|---|"]
        for arg in arguments:
            name = (arg.metavar or arg.name).upper()
            lines.append(f"| `{name}` | {_param_type(arg)} | {_default(arg)} | {_describe(arg)} |")
        lines.append("")
    if options:
        lines += ["| option | type | default | description |", "|---|---|---|---|"]
        for opt in options:
            names = ", ".join(f"`{o}`" for o in [*opt.opts, *opt.secondary_opts])
            lines.append(f"| {names} | {_param_type(opt)} | {_default(opt)} | {_describe(opt)} |")
        lines.append("")
    return lines


def render(app: typer.Typer | None = None) -> str:
    """docs/cli.md for ``app`` (default: ``murmur.cli.main.app``)."""
    if app is None:
        from murmur.cli.main import app as main_app

        app = main_app
    root = typer.main.get_command(app)
    commands = list(walk(root))
    lines = [
        "# CLI reference",
        "",
        f"<!-- Generated from murmur.cli.main by `{REGENERATE}`; do not edit by hand. -->",
        "",
        "Generated from the code: `tests/test_docs.py` fails when this page and the commands disagree; "
        f"`{REGENERATE}` rewrites it. Every command also takes `--help`.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for path, command in commands[1:]:
        lines.append(_index_row(" ".join(path), command.help))
    lines.append("")
    for path, command in commands:
        lines += _command_section(path, command)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
