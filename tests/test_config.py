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
    assert cfg.store.memory_limit == "25%"


@pytest.mark.parametrize("value", ["512MB", "2GB", "1.5GiB", "300 mib", "32MB", "25%", "100%", "0.5TB"])
def test_memory_limits_in_duckdbs_forms_are_accepted(value: str) -> None:
    assert parse_config({"store": {"memory_limit": value}}, env={}).store.memory_limit == value


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
        ({"MURMUR_STORE_MEMORY_LIMIT": "half"}, "variable MURMUR_STORE_MEMORY_LIMIT must be an amount"),
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
        ("[enrich]\nneardup_capacity = 0\n", "enrich.neardup_capacity must be at least 1"),
        ("[enrich]\nbackfill_idle_seconds = -1.0\n", "enrich.backfill_idle_seconds"),
        ("[enrich]\nbackfill_idle_seconds = nan\n", "enrich.backfill_idle_seconds"),
        # DuckDB would refuse these only when the service opens the store, or take them as bytes
        # ("512": an error; "-1": no limit at all; "10KB": too small to open a store)
        ("[store]\nmemory_limit = '512'\n", r"store\.memory_limit must be an amount .* got '512'"),
        ("[store]\nmemory_limit = 'lots'\n", r"store\.memory_limit must be .* e\.g\. '1GB'"),
        ("[store]\nmemory_limit = '-1GB'\n", "store.memory_limit must be"),
        ("[store]\nmemory_limit = '10KB'\n", "at least 32 MB"),
        ("[store]\nmemory_limit = '0%'\n", "from 1 to 100 %"),
        ("[store]\nmemory_limit = '150%'\n", "from 1 to 100 %"),
        ("[store]\nmemory_limit = 512\n", r"\$\.store\.memory_limit"),
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


@pytest.mark.parametrize(
    ("enrich", "capacity"),
    [
        ({"tier": "firehose"}, 1_000_000),
        ({"tier": "neural"}, 500_000),  # the neural tier's models leave less of its 1 GB to the index
        ({"tier": "neural", "neardup_capacity": 2_000_000}, 2_000_000),
        ({"tier": "firehose", "neardup_capacity": 1234}, 1234),
        (
            {"components": ["murmur.neardup.simhash@1", "murmur.neardup.cluster@2"], "neardup_capacity": 99},
            99,
        ),
        (
            {"components": ["murmur.neardup.simhash@1", "murmur.neardup.cluster@1"], "neardup_capacity": 99},
            99,
        ),
    ],
)
def test_neardup_capacity_reaches_the_near_duplicate_index(enrich: dict[str, object], capacity: int) -> None:
    from murmur.enrich.neardup import NearDupClusters, SimHashClusters, TieredNearDupClusters
    from murmur.enrich.neural.tiered import TieredEnricher
    from murmur.service import build_pipeline

    pipeline = build_pipeline(parse_config({"enrich": enrich}, env={}).enrich)
    assert pipeline is not None
    (index,) = [
        c.index
        for c in pipeline.components
        if isinstance(c, TieredNearDupClusters | NearDupClusters | SimHashClusters)
    ]
    assert index.capacity == capacity
    if enrich.get("tier") == "neural":
        assert any(isinstance(c, TieredEnricher) for c in pipeline.components)
