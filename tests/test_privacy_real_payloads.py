"""Privacy over real data: import every real payload file, then scan every stored column.

Nothing stored may contain a raw handle or account id, an e-mail address, a phone number or a
URL path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import phonenumbers
import pytest

from murmur.cli.ingest import import_files
from murmur.config import parse_config
from murmur.store import DirectReader
from murmur.testing import has_shared_data, shared_data

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real payloads)")

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
URL_PATH = re.compile(r"\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?::\d+)?/[\w%~-]", re.IGNORECASE)
REFERENCE = re.compile(r"(?:(?<![\w])@|\bu/|/users/)([\w.-]+)")
NON_DIGIT = re.compile(r"\D+")
DATED = re.compile(r"\b(?:19|20)\d\d-[01]?\d-[0-3]?\d\b|\b[0-3]?\d\.[01]?\d\.(?:19|20)\d\d\b")
ACCOUNT_ID = re.compile(r"did:plc:|did:web:|\bt2_[a-z0-9]{3,}", re.IGNORECASE)


def payload_files() -> list[tuple[Path, str]]:
    base = shared_data("payloads")
    files: list[tuple[Path, str]] = [(p, "reddit") for p in sorted((base / "reddit").glob("*.json*"))]
    files += [(p, "mastodon") for p in sorted((base / "mastodon").glob("*.jsonl"))]
    files += [(p, "feed") for p in sorted((base / "rss").rglob("*")) if p.is_file() and p.suffix != ".md"]
    return files


def walk(value: Any, out: set[str], keys: tuple[str, ...]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in keys and isinstance(v, str):
                out.add(v)
            walk(v, out, keys)
    elif isinstance(value, list):
        for v in value:
            walk(v, out, keys)


def raw_identities() -> set[str]:
    """Handles and account ids that appear in the real payloads (authors, accounts, mentions)."""
    found: set[str] = set()
    keys = ("author", "author_fullname", "acct", "username", "did")
    for path, _ in payload_files():
        if path.suffix not in (".json", ".jsonl"):
            continue
        for line in path.read_bytes().splitlines() if path.suffix == ".jsonl" else [path.read_bytes()]:
            if line.strip():
                walk(orjson.loads(line), found, keys)
    # Short or generic names ("AutoModerator", "[deleted]") would match ordinary words.
    return {h for h in found if len(h) >= 5 and not h.startswith("[") and h not in {"<USERNAME>", "reddit"}}


def stored_strings(db: Path) -> list[str]:
    reader = DirectReader.open(db)
    values: list[str] = []
    try:
        tables = reader.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).to_pylist()
        for t in tables:
            for row in reader.query(f'SELECT * FROM "{t["table_name"]}"').to_pylist():
                for v in row.values():
                    if isinstance(v, str):
                        values.append(v)
                    elif isinstance(v, list):
                        values.extend(x for x in v if isinstance(x, str))
    finally:
        reader.close()
    return values


def post_texts(db: Path) -> list[str]:
    reader = DirectReader.open(db)
    try:
        return [r["text"] for r in reader.query("SELECT text FROM posts").to_pylist()]
    finally:
        reader.close()


def test_no_identity_or_pii_survives_import(tmp_path: Path) -> None:
    db = tmp_path / "privacy.duckdb"
    # The recorded payloads are years old: a long retention keeps them for the scan.
    cfg = parse_config(
        {"store": {"path": str(db)}, "enrich": {"tier": "none"}, "privacy": {"retention_days": 36500}}, env={}
    )
    for path, fmt in payload_files():
        import_files(cfg, [path], fmt, show_progress=False)
    values = stored_strings(db)
    texts = " \n".join(values)
    assert len(values) > 20_000, "the import stored too little to prove anything"

    handles = raw_identities()
    assert len(handles) > 500
    # Every way a text refers to an account: @name, @name@instance, u/name, /users/name.
    referenced = {m.lower() for m in REFERENCE.findall(texts)}
    leaked = sorted(h for h in handles if h.lower() in referenced or h.lower().split("@")[0] in referenced)
    leaked += [h for h in handles if h.startswith(("did:", "t2_")) and h in texts]
    assert leaked == [], f"raw handles or ids stored: {leaked[:10]}"
    assert not ACCOUNT_ID.search(texts), ACCOUNT_ID.search(texts)
    emails = EMAIL.findall(texts)
    assert emails == [], emails[:5]
    paths = URL_PATH.findall(texts)
    assert paths == [], paths[:5]
    # Phone numbers are looked for in the stored post text as written. (Derived search tables strip
    # punctuation, which turns prices and dates like "£22.99/€20.69" into digit runs a detector reads
    # as numbers; they hold nothing the redacted text did not.) "ZZ" finds +-prefixed numbers of
    # every country.
    digit_rich = [v for v in post_texts(db) if len(NON_DIGIT.sub("", v)) >= 7]
    # A match that is a date with a four-digit year and a number beside it ("on 2019-12-27 96.88%
    # match") is no phone number: what the date leaves holds too few digits to be one.
    phones = [
        m.raw_string
        for region in ("ZZ", "US", "GB", "FR", "IN")
        for v in digit_rich
        for m in phonenumbers.PhoneNumberMatcher(v, region, leniency=phonenumbers.Leniency.VALID)
        if len(NON_DIGIT.sub("", DATED.sub(" ", m.raw_string))) >= 7
    ]
    assert phones == [], phones[:5]
