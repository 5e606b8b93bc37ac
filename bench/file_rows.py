"""File import throughput of the row reader and normalizer alone (no gate, no store): rows/s.

    python bench/file_rows.py FILE [FILE ...] [--format csv] [--repeat 3]

Each file is read with ``iter_file_rows`` and every row normalized with the default ``FileMapping``
(what ``murmur import`` does before the privacy gate); the best of ``--repeat`` runs is printed,
with the rows that normalized and the rows that would be quarantined.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from murmur.errors import PayloadError
from murmur.sources.normalize import detect_format, get_normalizer, iter_file_rows


def measure(path: Path, fmt: str) -> tuple[float, int, int]:
    normalizer = get_normalizer(fmt)
    ok = bad = 0
    t0 = time.perf_counter()
    for _, payload in iter_file_rows(path, fmt):
        try:
            normalizer(payload)
            ok += 1
        except PayloadError:
            bad += 1
    return time.perf_counter() - t0, ok, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--format", default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for path in args.files:
        fmt = detect_format(path) if args.format == "auto" else args.format
        runs = [measure(path, fmt) for _ in range(args.repeat)]
        best, ok, bad = min(runs)
        print(f"{path.name} ({fmt}): {(ok + bad) / best:,.0f} rows/s, {ok} normalized, {bad} quarantined")


if __name__ == "__main__":
    main()
