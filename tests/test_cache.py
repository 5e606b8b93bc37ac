"""murmur.cache: arrays derived once per machine, published whole, mapped back read-only."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from murmur.cache import mapped_arrays


def _arrays() -> dict[str, np.ndarray]:
    return {
        "table": np.arange(12, dtype=np.float32).reshape(3, 4),
        "labels": np.array(["en", "fr", "pcm"]),
        "config": np.array('{"n": 3}'),
    }


def test_arrays_are_built_once_then_mapped_read_only(tmp_path: Path) -> None:
    calls: list[int] = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return _arrays()

    first = mapped_arrays("demo", "abc", build, tmp_path)
    again = mapped_arrays("demo", "abc", build, tmp_path)
    assert len(calls) == 1
    for name, want in _arrays().items():
        np.testing.assert_array_equal(again[name], want)
        assert type(again[name]) is np.ndarray  # a plain view, not np.memmap
        assert not again[name].flags.writeable
        np.testing.assert_array_equal(first[name], want)
    assert str(again["config"]) == '{"n": 3}'
    with pytest.raises(ValueError, match="read-only"):
        again["table"][0, 0] = 1.0
    # another digest (another shipped file or format) is another folder
    mapped_arrays("demo", "def", build, tmp_path)
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-abc", "demo-def"]


def test_an_incomplete_or_damaged_folder_is_built_again(tmp_path: Path) -> None:
    mapped_arrays("demo", "abc", _arrays, tmp_path)
    folder = tmp_path / "demo-abc"
    table = folder / "table.npy"
    short = tmp_path / "short.npy"  # cut short, as a new file (never in place under a mapping)
    short.write_bytes(table.read_bytes()[:100])
    short.replace(table)
    rebuilt = mapped_arrays("demo", "abc", _arrays, tmp_path)
    np.testing.assert_array_equal(rebuilt["table"], _arrays()["table"])
    # a manifest that does not match the file (another version wrote it) is not trusted either
    manifest = json.loads((folder / "arrays.json").read_text())
    manifest["table"][0] = [4, 3]
    (folder / "arrays.json").write_text(json.dumps(manifest))
    assert mapped_arrays("demo", "abc", _arrays, tmp_path)["table"].shape == (3, 4)
    # a folder without its manifest (a writer killed before publishing) is built again
    (folder / "arrays.json").unlink()
    assert mapped_arrays("demo", "abc", _arrays, tmp_path)["labels"].tolist() == ["en", "fr", "pcm"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_an_unwritable_cache_only_costs_the_time(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    out = mapped_arrays("demo", "abc", _arrays, blocked)
    np.testing.assert_array_equal(out["table"], _arrays()["table"])


def _build_in_child(root: str) -> list[float]:
    return mapped_arrays("demo", "abc", _arrays, Path(root))["table"].ravel().tolist()


def test_processes_building_at_once_each_get_whole_arrays(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_build_in_child, [str(tmp_path)] * 8)
    assert all(r == list(range(12)) for r in results)
    assert [p.name for p in tmp_path.iterdir()] == ["demo-abc"]
