"""One exception tree for murmur.

::

    MurmurError
     ├── ConfigError          a config key is missing or invalid (names the key and the file)
     ├── PayloadError         a raw payload cannot become a post (names the field); it is quarantined
     ├── SourceError          a source cannot reach or read its platform (retried with backoff)
     ├── StoreError           the embedded store cannot be opened, migrated or written
     │    └── StoreLockedError    another process holds the store for writing
     ├── PrivacyError         something would break a privacy rule (e.g. an author field in a query)
     ├── QueryError           a query cannot be run
     │    └── QuerySyntaxError    a query does not parse (names the position and what was expected)
     ├── PipelineError        enrichment components are misconfigured or ordered wrongly
     └── ModelError           a model cannot be loaded (missing artifact, network needed)

Every message says what was wrong, where, and what to do about it.
"""

from __future__ import annotations


class MurmurError(Exception):
    """Base of every error murmur raises on purpose."""


class ConfigError(MurmurError):
    """A configuration key is missing or invalid."""


class PayloadError(MurmurError):
    """A raw payload cannot be normalized. ``field`` names the offending part, when known."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)


class SourceError(MurmurError):
    """A source cannot reach or read its platform."""


class StoreError(MurmurError):
    """The embedded store cannot be opened, migrated or written."""


class StoreLockedError(StoreError):
    """Another process holds the store file for writing."""


class PrivacyError(MurmurError):
    """An operation would break one of murmur's privacy rules."""


class QueryError(MurmurError):
    """A query cannot be run."""


class QuerySyntaxError(QueryError):
    """A query does not parse. ``position`` is the 0-based character offset of the problem."""

    def __init__(self, message: str, *, query: str, position: int) -> None:
        self.query = query
        self.position = position
        self.message = message
        caret = " " * position + "^"
        super().__init__(f"{message} (at position {position})\n  {query}\n  {caret}")


class PipelineError(MurmurError):
    """Enrichment components are misconfigured or in an order that cannot work."""


class ModelError(MurmurError):
    """A model cannot be loaded or run."""
