"""One TOML file plus environment overrides, validated.

A config looks like::

    [store]
    path = "murmur.duckdb"

    [privacy]
    k = 5                      # k-anonymity threshold for every aggregate
    retention_days = 30        # posts older than this are purged; the pseudonym key rotates as often
    public_accounts = ["whitehouse.gov", "@WHO"]   # handles that stay readable in @mentions

    [[sources]]
    id = "bluesky"             # stable id: keys the source's cursor, metrics and errors
    type = "jetstream"         # a registered source type
    url = "wss://jetstream2.us-east.bsky.network/subscribe"

Any scalar key can be overridden from the environment as ``MURMUR_<SECTION>_<KEY>``, e.g.
``MURMUR_PRIVACY_K=10`` or ``MURMUR_STORE_PATH=/data/m.duckdb``.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from murmur.errors import ConfigError

DEFAULT_MEMORY_LIMIT = "25%"
"""DuckDB's ``memory_limit`` for the store when none is configured (DuckDB's own default is 80 % of
the memory it detects). DuckDB keeps every table block it has read or written cached up to this
limit, so a long-running ``murmur run`` grows until it reaches it (bench/soak.py: +104 MB per 100k
posts without a limit). The primary keys' indexes must fit within it too (see docs/config.md)."""

_MEMORY_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(kb|mb|gb|tb|kib|mib|gib|tib|%)\s*$", re.IGNORECASE)
_MEMORY_UNITS = {
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
MIN_MEMORY_LIMIT = 32 * 1000**2
"""The least accepted. DuckDB opens a store with less, but leaves it no room for its key indexes and
a batch's work; a slip (``32KB`` for ``32MB``) is refused here rather than met at the first batch."""


def memory_limit_ok(value: str) -> bool:
    """Whether ``value`` is a memory limit DuckDB accepts and a store can work in: an amount with a
    unit (``512MB``, ``2GB``, ``1.5GiB``; at least 32 MB) or a share of the machine's memory
    (``25%``, from 1 to 100 %)."""
    m = _MEMORY_LIMIT.match(value)
    if m is None:
        return False
    number, unit = float(m[1]), m[2].lower()
    if unit == "%":
        return 1 <= number <= 100
    return number * _MEMORY_UNITS[unit] >= MIN_MEMORY_LIMIT


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str = "murmur.duckdb"
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    """The most memory DuckDB may hold for the store (its cache of table blocks, the primary keys'
    indexes, queries' working memory): an amount (``"1GB"``) or a share of the machine's memory
    (``"25%"``). Larger queries spill to ``<path>.tmp``."""


class PrivacyConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    k: int = 5
    retention_days: int = 30
    public_accounts: list[str] = msgspec.field(default_factory=list)
    secret_file: str | None = None
    """Where the installation's pseudonym secret lives; default: next to the store file."""


class EnrichConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    tier: str = "neural"
    """``neural`` (e5 vectors + trained heads; under overload the firehose model labels the rest and
    the backfill upgrades it later) or ``firehose`` (lexical, cheap components only)."""
    components: list[str] | None = None
    """Explicit component ids in order; default: the tier's standard pipeline."""
    workers: int | None = None
    """Processes for the stateless work (normalize, gate, stateless enrichment). Default: one per CPU
    for the firehose tier and plain ingest; 1 for the neural tier (PyTorch uses every core itself)."""
    backfill: bool = True
    """Upgrade, when the stream is idle, the posts the firehose model labelled because the neural tier
    was overloaded (the neural tier only; the firehose tier has nothing to upgrade)."""
    backfill_idle_seconds: float = 2.0
    """How long the stream must be idle (nothing queued or in flight) before the backfill starts."""
    backfill_chunk: int = 256
    """Most posts per backfill chunk (a chunk is about a second of the neural tier's measured rate):
    new input waits for at most one chunk."""
    neardup_capacity: int | None = None
    """Signatures the near-duplicate index holds (the last N posts; ~100 bytes each). Default: 500,000
    for the neural tier (its 1 GB budget), 1,000,000 otherwise."""


class SourceConfig(msgspec.Struct, kw_only=True):
    id: str
    type: str
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    privacy: PrivacyConfig = msgspec.field(default_factory=PrivacyConfig)
    enrich: EnrichConfig = msgspec.field(default_factory=EnrichConfig)
    sources: list[SourceConfig] = msgspec.field(default_factory=list)


_SECTIONS = ("store", "privacy", "enrich")


_SECTION_TYPES: dict[str, type[msgspec.Struct]] = {
    "store": StoreConfig,
    "privacy": PrivacyConfig,
    "enrich": EnrichConfig,
}


def _apply_env(raw: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """``MURMUR_<SECTION>_<KEY>=value``: converted to the key's type (lists are comma-separated).
    Returns the variable that set each ``section.key``, for the errors to name it."""
    applied: dict[str, str] = {}
    for name, value in env.items():
        if not name.startswith("MURMUR_"):
            continue
        rest = name.removeprefix("MURMUR_").lower()
        section, _, key = rest.partition("_")
        if section not in _SECTIONS or not key:
            continue
        fields = {f.name: f.type for f in msgspec.structs.fields(_SECTION_TYPES[section])}
        if key not in fields:
            msg = f"environment variable {name}: {section} has no key {key!r}; keys: {sorted(fields)}"
            raise ConfigError(msg)
        typ = fields[key]
        parsed: Any = value
        if "list" in str(typ):
            parsed = [v.strip() for v in value.split(",") if v.strip()]
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):  # `store = "x"`: the validation below names it
            continue
        try:
            table[key] = msgspec.convert(parsed, typ, strict=False)
        except msgspec.ValidationError as exc:
            msg = f"environment variable {name}={value!r}: {exc}"
            raise ConfigError(msg) from None
        applied[f"{section}.{key}"] = name
    return applied


def _lift_source_options(raw: dict[str, Any]) -> None:
    """``[[sources]]`` tables keep their type-specific keys next to ``id``/``type``."""
    entries = raw.get("sources", [])
    if not isinstance(entries, list):  # `sources = 3`: the validation below names it
        return
    for entry in entries:
        if isinstance(entry, dict):
            options = entry.setdefault("options", {})
            for key in [k for k in entry if k not in ("id", "type", "options")]:
                options[key] = entry.pop(key)


def parse_config(
    raw: dict[str, Any], *, origin: str = "<config>", env: dict[str, str] | None = None
) -> Config:
    raw = dict(raw)
    from_env = _apply_env(raw, dict(os.environ) if env is None else env)
    _lift_source_options(raw)
    try:
        config = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        msg = f"{origin}: {exc}"
        raise ConfigError(msg) from None
    enrich = config.enrich
    idle = enrich.backfill_idle_seconds
    bounds: tuple[tuple[str, object, bool, str], ...] = (
        ("privacy.k", config.privacy.k, config.privacy.k >= 2, "at least 2 (k-anonymity)"),
        (
            "privacy.retention_days",
            config.privacy.retention_days,
            config.privacy.retention_days >= 1,
            "at least 1",
        ),
        (
            "enrich.workers",
            enrich.workers,
            enrich.workers is None or enrich.workers >= 1,
            "at least 1 (or unset)",
        ),
        ("enrich.backfill_chunk", enrich.backfill_chunk, enrich.backfill_chunk >= 1, "at least 1"),
        (
            "enrich.neardup_capacity",
            enrich.neardup_capacity,
            enrich.neardup_capacity is None or enrich.neardup_capacity >= 1,
            "at least 1 (or unset)",
        ),
        ("enrich.backfill_idle_seconds", idle, 0 <= idle < math.inf, "a number >= 0"),
        (
            "store.memory_limit",
            repr(config.store.memory_limit),
            memory_limit_ok(config.store.memory_limit),
            "an amount of memory with its unit (KB, MB, GB, TB or KiB, MiB, GiB, TiB; at least 32 MB), "
            "e.g. '1GB', or a share of the machine's memory from 1 to 100 %, e.g. '25%'",
        ),
    )
    for key, value, ok, rule in bounds:
        if not ok:
            where = f"environment variable {from_env[key]}" if key in from_env else f"{origin}: {key}"
            msg = f"{where} must be {rule}, got {value}"
            raise ConfigError(msg)
    seen: set[str] = set()
    for i, source in enumerate(config.sources):
        if source.id in seen:
            msg = f"{origin}: sources[{i}].id {source.id!r} is used twice; source ids key cursors"
            raise ConfigError(msg)
        seen.add(source.id)
    return config


def load_config(path: str | Path | None, *, env: dict[str, str] | None = None) -> Config:
    """Read a TOML config (or the defaults when ``path`` is None), then apply env overrides."""
    if path is None:
        return parse_config({}, env=env)
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"config file {p} does not exist"
        raise ConfigError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{p}: not valid TOML: {exc}"
        raise ConfigError(msg) from None
    return parse_config(raw, origin=str(p), env=env)
