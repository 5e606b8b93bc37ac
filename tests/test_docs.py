"""The docs, checked against the code, so they cannot go stale.

* docs/cli.md is exactly what ``python -m murmur.cli.reference`` renders from the typer app;
* docs/config.md has a row for every key of ``murmur.config.Config`` and of every source type's
  options, with the code's default, and every TOML example in the docs and the README loads and builds
  its sources; its environment-override table says what the code does;
* docs/privacy.md documents every redaction placeholder, and its examples are what the redactor does;
* docs/architecture.md's layer table is the import rule, and every module of ``src/murmur`` keeps it.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from murmur.config import Config, parse_config
from murmur.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "murmur"
_REQUIRED = object()


# --- Markdown helpers -------------------------------------------------------------------------------


def read_doc(name: str) -> str:
    path = DOCS / name
    assert path.is_file(), f"{path} is missing"
    return path.read_text(encoding="utf-8")


def sections(text: str) -> dict[str, str]:
    """Heading title (without the #s) → the text up to the next heading; fenced code is not scanned."""
    out: dict[str, list[str]] = {}
    current: list[str] = out.setdefault("", [])
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^#{1,6}\s+(.*?)\s*$", line)):
            current = out.setdefault(m.group(1), [])
            continue
        current.append(line)
    return {title: "\n".join(lines) for title, lines in out.items()}


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table outside fenced code: a list of rows (the header first), each a list of cells."""
    found: list[list[list[str]]] = []
    rows: list[list[str]] = []
    fenced = False
    for line in [*text.splitlines(), ""]:
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            if not re.fullmatch(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?", line.strip()):
                rows.append(_cells(line))
        elif rows:
            found.append(rows)
            rows = []
    return found


def code(cell: str) -> str:
    """The text of a cell that is one code span, e.g. ``\u0060k\u0060`` → ``k``."""
    m = re.fullmatch(r"`([^`]*)`", cell.strip())
    assert m, f"expected one `code` span in the table cell {cell!r}"
    return m.group(1)


def fenced_blocks(text: str, lang: str) -> Iterator[tuple[int, str]]:
    """(line number, body) of every ```lang block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{lang}":
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            yield start, "\n".join(lines[start:j])
            i = j
        i += 1


# --- docs/cli.md ------------------------------------------------------------------------------------


def test_cli_reference_is_generated_from_the_commands() -> None:
    from murmur.cli.reference import REGENERATE, render

    path = DOCS / "cli.md"
    actual = path.read_text(encoding="utf-8") if path.is_file() else ""
    assert actual == render(), (
        f"docs/cli.md does not match the commands in murmur.cli; regenerate it: `{REGENERATE}` "
        "(from the repository root), then review and commit the change"
    )


def test_cli_reference_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from murmur.cli.reference import render

    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("TERM", "xterm-256color")
    wide = render()
    monkeypatch.setenv("COLUMNS", "20")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("NO_COLOR", "1")
    assert render() == wide


# --- docs/config.md ---------------------------------------------------------------------------------


def config_sections() -> list[tuple[str, type[msgspec.Struct]]]:
    """(heading in docs/config.md, Struct) for every table of ``Config`` and every source type."""
    from murmur.registry import Registry
    from murmur.sources import SourceFactory, register_builtins

    out: list[tuple[str, type[msgspec.Struct]]] = []
    info = msgspec.inspect.type_info(Config)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        t = field.type
        if isinstance(t, msgspec.inspect.StructType):
            out.append((f"`[{field.name}]`", t.cls))
        elif isinstance(t, msgspec.inspect.ListType) and isinstance(t.item_type, msgspec.inspect.StructType):
            out.append((f"`[[{field.name}]]`", t.item_type.cls))
        else:
            problem = "is neither a table nor an array of tables: document it in docs/config.md"
            pytest.fail(f"Config.{field.name} {problem}")
    registry: Registry[SourceFactory] = Registry("source type")
    register_builtins(registry)
    for name in registry.names():
        module = sys.modules[getattr(registry.get(name), "__module__", "")]
        structs = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, msgspec.Struct)
            and obj.__name__.endswith("Options")
            and obj.__module__ == module.__name__
        ]
        assert len(structs) == 1, (
            f"source type {name!r}: expected one *Options struct in {module.__name__}, found {structs}"
        )
        out.append((f'`type = "{name}"`', structs[0]))
    return out


CONFIG_SECTIONS = config_sections()


def _code_default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return _REQUIRED


def _documented_default(cell: str) -> Any:
    if cell == "required":
        return _REQUIRED
    if cell == "unset":
        return None
    return tomllib.loads(f"v = {code(cell)}")["v"]


@pytest.mark.parametrize(("heading", "struct"), CONFIG_SECTIONS, ids=[h for h, _ in CONFIG_SECTIONS])
def test_every_config_key_is_documented_with_its_default(heading: str, struct: type[msgspec.Struct]) -> None:
    doc = sections(read_doc("config.md"))
    assert heading in doc, f"docs/config.md needs a section headed {heading} documenting {struct.__name__}"
    found = [t for t in tables(doc[heading]) if t[0][:1] == ["key"]]
    assert found, f"docs/config.md, section {heading}: needs a table | key | type | default | meaning |"
    header, *rows = found[0]
    column = header.index("default")
    documented = {code(row[0]): row for row in rows}
    fields = msgspec.structs.fields(struct)
    names = [f.name for f in fields]
    missing = [n for n in names if n not in documented]
    assert not missing, f"docs/config.md, section {heading}: add a row for {missing} ({struct.__qualname__})"
    stale = [n for n in documented if n not in names]
    assert not stale, (
        f"docs/config.md, section {heading}: {stale} are no longer keys of {struct.__qualname__}"
    )
    for field in fields:
        cell = documented[field.name][column]
        assert _documented_default(cell) == _code_default(field), (
            f"docs/config.md, section {heading}: `{field.name}` is documented with default {cell}, but "
            f"{struct.__qualname__} says {_code_default(field)!r}"
        )


def toml_examples() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for line, block in fenced_blocks(path.read_text(encoding="utf-8"), "toml"):
            out.append((f"{path.relative_to(ROOT)}:{line}", block))
    return out


TOML_EXAMPLES = toml_examples()


def test_the_docs_have_toml_examples() -> None:
    where = {w.split(":")[0] for w, _ in TOML_EXAMPLES}
    assert {"README.md", "docs/config.md"} <= where


@pytest.mark.parametrize(("where", "block"), TOML_EXAMPLES, ids=[w for w, _ in TOML_EXAMPLES])
def test_toml_example_loads_and_builds_its_sources(
    where: str, block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from murmur.service import build_sources
    from murmur.sources import register_builtins

    try:
        raw = tomllib.loads(block)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{where}: the TOML example is not valid TOML: {exc}")
    try:
        config = parse_config(raw, origin=where, env={})
    except ConfigError as exc:
        pytest.fail(f"{where}: the TOML example does not load: {exc}")
    monkeypatch.chdir(tmp_path)
    for source in config.sources:
        for key, value in source.options.items():
            if key.endswith("_env") and isinstance(value, str):
                monkeypatch.setenv(value, "secret-from-the-environment")
        if source.type == "file":
            path = Path(str(source.options.get("path", "")))
            assert not path.is_absolute(), f"{where}: use a relative path in file-source examples"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    register_builtins()
    try:
        built = build_sources(config.sources)
    except ConfigError as exc:
        pytest.fail(f"{where}: a source of the TOML example does not build: {exc}")
    assert [s.id for s in built] == [s.id for s in config.sources]


def _env_rows() -> list[tuple[str, str, str]]:
    env = sections(read_doc("config.md"))["Environment overrides"]
    (_, *rows), *_ = [t for t in tables(env) if t[0][:1] == ["variable"]]
    return [(code(r[0]), code(r[1]), code(r[2])) for r in rows]


def _env_not_yet() -> list[str]:
    env = sections(read_doc("config.md"))["Environment overrides"]
    m = re.search(r"Not yet possible from the environment.*?:(.*?)\.\s", env, re.DOTALL)
    if m is None:  # every key can be set from the environment
        return []
    return re.findall(r"`([A-Z_]+=[^`]*)`", m.group(1))


def test_documented_environment_overrides_work() -> None:
    for variable, key, example in _env_rows():
        name, _, value = example.partition("=")
        assert name == variable, f"docs/config.md: the example {example} does not set {variable}"
        config = parse_config({}, env={name: value})
        section, _, attr = key.partition(".")
        got = getattr(getattr(config, section), attr)
        shown = ",".join(got) if isinstance(got, list) else str(got)
        assert shown == value, f"docs/config.md: {example} should set {key} to {value!r}, got {got!r}"


def test_environment_overrides_that_do_not_work_are_documented_as_such() -> None:
    examples = _env_not_yet()
    for example in examples:
        name, _, value = example.partition("=")
        try:
            parse_config({}, env={name: value})
        except ConfigError:
            continue
        pytest.fail(f"docs/config.md says {example} does not work yet, but it does now: move it to the table")


def test_every_scalar_config_key_says_whether_the_environment_can_set_it() -> None:
    covered = {key for _, key, _ in _env_rows()}
    for example in _env_not_yet():
        name = example.partition("=")[0].removeprefix("MURMUR_").lower()
        section, _, attr = name.partition("_")
        covered.add(f"{section}.{attr}")
    for heading, struct in CONFIG_SECTIONS:
        m = re.fullmatch(r"`\[(\w+)\]`", heading)
        if not m:
            continue
        for field in msgspec.structs.fields(struct):
            key = f"{m.group(1)}.{field.name}"
            assert key in covered, (
                f"docs/config.md, Environment overrides: say whether MURMUR_{key.replace('.', '_').upper()} "
                f"works (a row in the table) or not (the 'Not yet possible' note)"
            )


# --- docs/privacy.md --------------------------------------------------------------------------------


def placeholders() -> dict[str, str]:
    from murmur.privacy import redact

    return {
        name: value
        for name, value in vars(redact).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    }


def redaction_examples() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for table in tables(read_doc("privacy.md")):
        header, *rows = table
        if "text as posted" in header and "text as stored" in header:
            before, after = header.index("text as posted"), header.index("text as stored")
            out += [(code(row[before]), code(row[after])) for row in rows]
    return out


def test_every_redaction_placeholder_is_documented_with_an_example() -> None:
    text = read_doc("privacy.md")
    found = placeholders()
    assert {"EMAIL", "PHONE", "USER"} <= set(found), "murmur.privacy.redact's placeholder constants moved"
    produced = " ".join(after for _, after in redaction_examples())
    for name, value in found.items():
        assert f"`{value}`" in text, f"docs/privacy.md: document redact.{name} ({value})"
        assert value in produced, f"docs/privacy.md: add a redaction example whose stored text shows {value}"


def test_privacy_redaction_examples_are_what_the_redactor_does() -> None:
    from murmur.privacy.redact import Redactor

    examples = redaction_examples()
    assert len(examples) >= 10
    redactor = Redactor(["@WHO"])
    wrong = [
        f"{before!r}: documented {after!r}, redactor gives {got!r}"
        for before, after in examples
        if (got := redactor.redact(before).text) != after
    ]
    assert not wrong, "docs/privacy.md's examples disagree with murmur.privacy.redact:\n" + "\n".join(wrong)


def test_privacy_doc_names_the_phone_regions_the_code_uses() -> None:
    from murmur.privacy import redact

    m = re.search(r"for one of these regions: ([A-Z, ]+)\.", read_doc("privacy.md"))
    assert m, (
        "docs/privacy.md: the phone paragraph must list the regions ('for one of these regions: US, ...')"
    )
    documented = [r.strip() for r in m.group(1).split(",")]
    assert documented == list(redact._PHONE_REGIONS)


def test_privacy_doc_states_the_configured_defaults() -> None:
    from murmur.config import PrivacyConfig

    text = " ".join(read_doc("privacy.md").split())
    defaults = PrivacyConfig()
    assert f"`privacy.k` distinct author keys (default {defaults.k})" in text
    assert f"`privacy.retention_days` (default {defaults.retention_days})" in text


# --- docs/architecture.md: the import rule ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layers:
    rank: dict[str, int]
    """Unit (``types``, ``sources``, ...) → rank; lower ranks never import higher ones."""
    side: dict[str, set[str]]
    """Units outside the ranks → the units they may import."""


@functools.cache
def layers() -> Layers:
    doc = sections(read_doc("architecture.md"))
    assert "Import direction" in doc, "docs/architecture.md needs its 'Import direction' section"
    found = [t for t in tables(doc["Import direction"]) if t[0][:2] == ["rank", "modules"]]
    assert found, "docs/architecture.md, Import direction: needs the | rank | modules | may import | table"
    rank: dict[str, int] = {}
    side: dict[str, set[str]] = {}
    for row in found[0][1:]:
        units = re.findall(r"`([\w]+)`", row[1])
        if row[0].isdigit():
            rank.update(dict.fromkeys(units, int(row[0])))
        else:
            for unit in units:
                side[unit] = set(re.findall(r"`([\w]+)`", row[2]))
    return Layers(rank, side)


def unit_of(module: str) -> str:
    """``murmur.enrich.neural.tiered`` → ``enrich``; ``murmur`` → ``murmur``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


@dataclass(frozen=True, slots=True)
class Import:
    importer: str
    imported: str
    path: str
    line: int
    lazy: bool
    """Inside a function: runs when called, not when the module is imported."""
    type_only: bool
    """Under ``if TYPE_CHECKING:``."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str) -> str:
    """The deepest prefix of ``name`` that is a module or package of src/murmur."""
    parts = name.split(".")
    while len(parts) > 1:
        base = SRC.parent.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return parts[0]


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, is_package: bool) -> None:
        self.module, self.path, self.is_package = module, path, is_package
        self.found: list[Import] = []
        self._depth = 0
        self._type_only = 0

    def _add(self, targets: list[str], line: int) -> None:
        for target in dict.fromkeys(_resolve(t) for t in targets if t == "murmur" or t.startswith("murmur.")):
            self.found.append(
                Import(
                    self.module,
                    target,
                    str(self.path.relative_to(ROOT)),
                    line,
                    self._depth > 0,
                    self._type_only > 0,
                )
            )

    def visit_Import(self, node: ast.Import) -> None:
        self._add([a.name for a in node.names], node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, *([node.module] if node.module else [])])
        self._add([f"{base}.{a.name}" for a in node.names], node.lineno)

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = _nested
    visit_AsyncFunctionDef = _nested
    visit_Lambda = _nested

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            self._type_only += 1
            for child in node.body:
                self.visit(child)
            self._type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)


@functools.cache
def murmur_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for path in sorted(SRC.rglob("*.py")):
        visitor = _Visitor(_module_name(path), path, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += visitor.found
    return tuple(found)


def allowed(layers: Layers, importer: str, imported: str) -> bool:
    src, dst = unit_of(importer), unit_of(imported)
    if src == dst or dst == "murmur":
        return True
    if src in layers.side:
        return dst in layers.side[src] or layers.rank.get(dst) == 0
    if dst in layers.side:
        return layers.rank[src] == max(layers.rank.values())  # only the top (the CLI's demo) uses them
    return layers.rank[dst] < layers.rank[src] or layers.rank[src] == layers.rank[dst] == 0


KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {
    ("murmur.testing", "murmur.sources.base"): "lazy; SourceStats could move down, or testing up a layer",
}
"""Violations found when this test was written, reported to the lead: (importer, imported) → the fix.
Remove an entry when it is fixed (the test says so); never add one to get a new import through."""


def test_every_module_has_a_layer() -> None:
    lay = layers()
    units = {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    units |= {p.parent.name for p in SRC.glob("*/__init__.py")}
    unplaced = sorted(units - set(lay.rank) - set(lay.side))
    assert not unplaced, f"docs/architecture.md, Import direction: give {unplaced} a rank in the layer table"


def _violations(lazy: bool) -> tuple[list[str], set[tuple[str, str]]]:
    lay = layers()
    new: list[str] = []
    known: set[tuple[str, str]] = set()
    for imp in murmur_imports():
        if imp.lazy != lazy or allowed(lay, imp.importer, imp.imported):
            continue
        if (imp.importer, imp.imported) in KNOWN_VIOLATIONS:
            known.add((imp.importer, imp.imported))
            continue
        src, dst = unit_of(imp.importer), unit_of(imp.imported)
        kind = " (under TYPE_CHECKING)" if imp.type_only else ""
        new.append(
            f"{imp.path}:{imp.line}: {imp.importer} imports {imp.imported}{kind}, but {src} "
            f"(rank {lay.rank.get(src, 'side')}) may not import {dst} (rank {lay.rank.get(dst, 'side')})"
        )
    return new, known


@pytest.mark.parametrize("lazy", [False, True], ids=["module-level", "inside-functions"])
def test_imports_flow_downwards(lazy: bool) -> None:
    new, _ = _violations(lazy)
    assert not new, (
        "imports against the layer rule of docs/architecture.md (lower layers never import higher ones; "
        "move the shared code down instead):\n" + "\n".join(new)
    )


def test_known_layer_violations_are_still_there() -> None:
    _, top = _violations(False)
    _, lazy = _violations(True)
    fixed = sorted(set(KNOWN_VIOLATIONS) - top - lazy)
    assert not fixed, f"fixed, thank you: remove {fixed} from KNOWN_VIOLATIONS in tests/test_docs.py"


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for imp in murmur_imports():
        if not imp.lazy and not imp.type_only and imp.importer != imp.imported:
            graph.setdefault(imp.importer, set()).add(imp.imported)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "module-level import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_architecture_module_map_names_every_module() -> None:
    doc = sections(read_doc("architecture.md"))
    assert "Module map" in doc, "docs/architecture.md needs its 'Module map' section"
    text = doc["Module map"]
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if path.name == "__init__.py":
            if rel.parent == Path():
                continue
            name = f"{rel.parent.name}/"
        else:
            name = rel.name if len(rel.parts) > 1 else rel.as_posix()
        if name not in text:
            missing.append(rel.as_posix())
    assert not missing, f"docs/architecture.md, Module map: describe {missing}"


def test_import_rule_checker_catches_an_upward_import() -> None:
    """The checker itself: an upward import is found, a downward one is not, lazy ones are marked."""
    lay = layers()
    assert not allowed(lay, "murmur.store.duck", "murmur.query.search")
    assert not allowed(lay, "murmur.sources.feeds", "murmur.privacy.gate")
    assert not allowed(lay, "murmur.testing_servers.http", "murmur.store.duck")
    assert allowed(lay, "murmur.testing_servers.http", "murmur.sources.base")
    assert allowed(lay, "murmur.config", "murmur.errors")
    assert allowed(lay, "murmur.query.search", "murmur.store.reader")
    assert allowed(lay, "murmur.cli.main", "murmur.service")
    assert not allowed(lay, "murmur.service", "murmur.cli.main")
    path = SRC / "store" / "duck.py"
    visitor = _Visitor("murmur.store.duck", path, False)
    visitor.visit(ast.parse("def f():\n    from murmur.query import search\nimport murmur.types\n"))
    assert [(i.imported, i.lazy) for i in visitor.found] == [
        ("murmur.query.search", True),
        ("murmur.types", False),
    ]
