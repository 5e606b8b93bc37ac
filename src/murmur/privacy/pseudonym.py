"""Keyed, period-rotated author pseudonyms.

``author_key = HMAC-SHA256(secret, platform + ":" + raw_id)``, truncated to 16 hex characters. The
secret is random per installation and per *period* (the retention period): when a period ends, a new
secret is generated and the old one is destroyed, so keys cannot be linked across periods, not even
by whoever holds the key file. The key exists only to count distinct authors (k-anonymity).

Post ids get the same treatment with a second, *stable* secret: platform post ids often embed the
author (``at://did:plc:…/app.bsky.feed.post/…``, ``https://instance/users/alice/statuses/…``), so the
store keeps ``post_id = HMAC-SHA256(id_secret, platform + ":" + raw_post_id)`` truncated. It must be
stable so that a platform's later deletion still finds the post; it identifies a post, not a person.

The key file (JSON, mode 0600) holds only the current period's number and secret, and the id secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from murmur.errors import ConfigError

KEY_HEX_CHARS = 16
POST_ID_HEX_CHARS = 24


def period_of(moment: datetime, period_days: int) -> int:
    return int(moment.astimezone(UTC).timestamp() // (period_days * 86400))


@dataclass(slots=True)
class PeriodSecret:
    period: int
    secret: bytes
    id_secret: bytes


class Pseudonymizer:
    """Turns raw author ids into period-scoped keyed pseudonyms."""

    def __init__(self, key_file: str | Path | None, *, period_days: int) -> None:
        self.key_file = None if key_file is None else Path(key_file)
        self.period_days = period_days
        self._current: PeriodSecret | None = None
        self._mac_cache: tuple[PeriodSecret, hmac.HMAC, hmac.HMAC] | None = None
        self._macs_for: datetime | None = None
        self._memory_id_secret = secrets.token_bytes(32)

    def _load_or_rotate(self, period: int) -> PeriodSecret:
        if self.key_file is not None and self.key_file.exists():
            try:
                data = orjson.loads(self.key_file.read_bytes())
                stored = PeriodSecret(
                    int(data["period"]), bytes.fromhex(data["secret"]), bytes.fromhex(data["id_secret"])
                )
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
                msg = (
                    f"pseudonym key file {self.key_file} is unreadable; restore it from a backup "
                    "(deleting it starts new keys: stored posts could then not be matched by deletions)"
                )
                raise ConfigError(msg) from None
            if stored.period == period:
                return stored
            fresh = PeriodSecret(period, secrets.token_bytes(32), stored.id_secret)
            self._save(fresh)
            return fresh
        fresh = PeriodSecret(period, secrets.token_bytes(32), self._memory_id_secret)
        if self.key_file is not None:
            self._save(fresh)
        return fresh

    def _save(self, value: PeriodSecret) -> None:
        assert self.key_file is not None
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.key_file.with_suffix(self.key_file.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                orjson.dumps(
                    {"period": value.period, "secret": value.secret.hex(), "id_secret": value.id_secret.hex()}
                )
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.key_file)
        with contextlib.suppress(OSError):
            os.chmod(self.key_file, 0o600)

    def current(self, now: datetime) -> PeriodSecret:
        """This period's secrets (rotating them first if the period changed)."""
        self.secret_for(now)
        assert self._current is not None
        return self._current

    def use(self, value: PeriodSecret) -> None:
        """Adopt secrets handed over by the process that owns the key file (worker processes never
        read or rotate the file themselves, so two of them cannot rotate it at once)."""
        if self._current != value:
            self._current = value
            self._macs_for = None

    def secret_for(self, now: datetime) -> bytes:
        return self._macs(now)[0]

    def _macs(self, now: datetime) -> tuple[bytes, hmac.HMAC, hmac.HMAC]:
        """(this period's secret, HMACs keyed with it and with the id secret), for ``now``. A batch
        shares one ``now``, and a keyed HMAC is cheaper to copy than to key again: both are cached."""
        if now is not self._macs_for:
            period = period_of(now, self.period_days)
            if self._current is None or self._current.period != period:
                self._current = self._load_or_rotate(period)
            if self._mac_cache is None or self._mac_cache[0] is not self._current:
                cur = self._current
                self._mac_cache = (
                    cur,
                    hmac.new(cur.secret, digestmod=hashlib.sha256),
                    hmac.new(cur.id_secret, digestmod=hashlib.sha256),
                )
            self._macs_for = now
        assert self._current is not None
        assert self._mac_cache is not None
        return self._current.secret, self._mac_cache[1], self._mac_cache[2]

    def key(self, platform: str, raw_id: str, *, now: datetime) -> str:
        mac = self._macs(now)[1].copy()
        mac.update(f"{platform}:{raw_id}".encode())
        return mac.hexdigest()[:KEY_HEX_CHARS]

    def post_key(self, platform: str, raw_post_id: str, *, now: datetime) -> str:
        mac = self._macs(now)[2].copy()
        mac.update(f"{platform}:{raw_post_id}".encode())
        return mac.hexdigest()[:POST_ID_HEX_CHARS]
