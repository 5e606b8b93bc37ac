"""The embedded store (DuckDB): schema and migrations, the one writer, and readers."""

from murmur.store.duck import QuarantineRecord, Store
from murmur.store.reader import DirectReader, Reader, ReadServer, open_reader

__all__ = ["DirectReader", "QuarantineRecord", "ReadServer", "Reader", "Store", "open_reader"]
