from __future__ import annotations

from pathlib import Path

import pytest

from murmur.config import load_config, parse_config
from murmur.errors import ConfigError


def test_defaults() -> None:
    cfg = parse_config({}, env={})
    assert cfg.privacy.k == 5
    assert cfg.privacy.retention_days == 30
    assert cfg.enrich.tier == "neural"


def test_environment_overrides_are_typed() -> None:
    cfg = parse_config(
        {},
        env={
            "MURMUR_PRIVACY_K": "10",
            "MURMUR_ENRICH_WORKERS": "4",
            "MURMUR_ENRICH_COMPONENTS": "murmur.lang.cld2lingua@2, murmur.terms@1",
            "MURMUR_PRIVACY_PUBLIC_ACCOUNTS": "@WHO,@UN",
            "MURMUR_SHARED": "/elsewhere",  # not a config section: ignored
        },
    )
    assert cfg.privacy.k == 10
    assert cfg.enrich.workers == 4
    assert cfg.enrich.components == ["murmur.lang.cld2lingua@2", "murmur.terms@1"]
    assert cfg.privacy.public_accounts == ["@WHO", "@UN"]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MURMUR_PRIVACY_K": "many"}, "MURMUR_PRIVACY_K"),
        ({"MURMUR_PRIVACY_KAY": "5"}, "no key 'kay'"),
        # a value of the right type out of bounds names the variable too, not the config file
        ({"MURMUR_PRIVACY_K": "1"}, "environment variable MURMUR_PRIVACY_K must be at least 2"),
        ({"MURMUR_ENRICH_WORKERS": "0"}, "environment variable MURMUR_ENRICH_WORKERS must be at least 1"),
    ],
)
def test_bad_environment_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_config({}, env=env)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[privacy]\nk = 1\n", "privacy.k must be at least 2"),
        ("[privacy]\nk = 'five'\n", "privacy.k"),
        ("[store]\npth = 'x'\n", "pth"),
        ("[[sources]]\nid = 'a'\ntype = 'file'\n[[sources]]\nid = 'a'\ntype = 'file'\n", "used twice"),
        ("[store\n", "not valid TOML"),
        ("sources = 3\n", r"\$\.sources"),  # was a TypeError traceback
        # were accepted and silently taken as 1 (workers: in-process), 1 and 0
        ("[enrich]\nworkers = 0\n", "enrich.workers must be at least 1"),
        ("[enrich]\nbackfill_chunk = -5\n", "enrich.backfill_chunk must be at least 1"),
        ("[enrich]\nbackfill_idle_seconds = -1.0\n", "enrich.backfill_idle_seconds"),
        ("[enrich]\nbackfill_idle_seconds = nan\n", "enrich.backfill_idle_seconds"),
    ],
)
def test_bad_config_files_say_what_and_where(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "murmur.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle) as info:
        load_config(path, env={})
    assert str(path) in str(info.value)


def test_source_options_are_lifted_into_options() -> None:
    cfg = parse_config({"sources": [{"id": "b", "type": "jetstream", "url": "ws://x"}]}, env={})
    assert cfg.sources[0].options == {"url": "ws://x"}


def test_a_section_that_is_not_a_table_is_named_also_with_an_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "murmur.toml"
    path.write_text("store = 'm.duckdb'\n")  # `[store]` forgotten: was a TypeError traceback
    with pytest.raises(ConfigError, match=r"\$\.store") as info:
        load_config(path, env={"MURMUR_STORE_PATH": "/data/m.duckdb"})
    assert str(path) in str(info.value)
