"""What network sources share: reconnect backoff, rate-limit waits, and option parsing.

Reconnects use *exponential backoff with full jitter*: the n-th consecutive failure waits a random
time in ``[0, min(maximum, initial * multiplier**n)]`` (AWS Architecture Blog, "Exponential Backoff
and Jitter"), so many clients that lost the same server do not come back in lock step. The counter
resets as soon as a connection delivers data again, which a 24/7 stream needs: a connection that ran
for a day and then dropped starts over at the short delay.

``stamina`` was considered and not used here: its retry loop counts attempts and total time over the
life of the loop (no reset after progress, which a never-ending stream needs), and its jitter is
added on top of the exponential delay instead of drawn over the whole interval.

Option structs are ``msgspec`` structs; ``parse_options`` turns a ``SourceConfig.options`` dict
into one, and any problem into a ``ConfigError`` that names ``sources.<id>.<key>``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import msgspec

from murmur.config import SourceConfig
from murmur.errors import ConfigError, SourceError
from murmur.urls import scrub_secrets

log = logging.getLogger(__name__)

T = TypeVar("T", bound=msgspec.Struct)


class RetryOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Reconnect options every network source accepts."""

    backoff_initial: float = 1.0
    """Seconds: the cap of the first reconnect delay (the delay itself is drawn in ``[0, cap]``)."""
    backoff_max: float = 60.0
    """Seconds: the largest cap, however many failures in a row."""
    max_attempts: int | None = None
    """Consecutive failed attempts before the source gives up with ``SourceError``; None: never."""


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with full jitter; ``reset()`` after progress."""

    initial: float = 1.0
    maximum: float = 60.0
    multiplier: float = 2.0
    max_attempts: int | None = None
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    @classmethod
    def from_options(cls, options: RetryOptions, *, rng: random.Random | None = None) -> Backoff:
        return cls(
            initial=options.backoff_initial,
            maximum=options.backoff_max,
            max_attempts=options.max_attempts,
            rng=rng or random.Random(),
        )

    def cap(self) -> float:
        """The upper bound of the next delay."""
        exponent = min(self.failures, 64)  # keeps the power finite; the maximum caps it anyway
        return float(min(self.maximum, self.initial * self.multiplier**exponent))

    def next_delay(self) -> float:
        """Count one failure and draw the delay before the next attempt."""
        delay = self.rng.uniform(0.0, self.cap())
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0

    @property
    def exhausted(self) -> bool:
        return self.max_attempts is not None and self.failures >= self.max_attempts

    async def wait(self, where: str, error: BaseException | str) -> float:
        """Count a failure at ``where`` and sleep before the next attempt.

        Raises ``SourceError`` (chained to ``error`` when it is an exception) once ``max_attempts``
        failures in a row have happened.
        """
        where, why = scrub_secrets(where), scrub_secrets(str(error))
        if self.max_attempts is not None and self.failures + 1 >= self.max_attempts:
            self.failures += 1
            msg = (
                f"{where}: gave up after {self.failures} failed attempts in a row; last error: {why}. "
                "Check that the server is reachable, or raise max_attempts."
            )
            if isinstance(error, BaseException):
                raise SourceError(msg) from error
            raise SourceError(msg)
        delay = self.next_delay()
        log.warning("%s: %s; retrying in %.2f s (attempt %d)", where, why, delay, self.failures + 1)
        await asyncio.sleep(delay)
        return delay


async def sleep_for_rate_limit(where: str, seconds: float, *, max_wait: float) -> float:
    """Sleep until a rate-limit window resets (never longer than ``max_wait``); returns the wait."""
    wait = min(max(seconds, 0.0), max_wait)
    if wait > 0:
        log.info("%s: rate limit exhausted, waiting %.2f s for the window to reset", where, wait)
        await asyncio.sleep(wait)
    return wait


_PATH = re.compile(r"at `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def config_error(config: SourceConfig, key: str, problem: str) -> ConfigError:
    """A ``ConfigError`` for ``sources.<id>.<key>``."""
    return ConfigError(f"sources.{config.id}.{key} (type {config.type!r}): {problem}")


def parse_options(config: SourceConfig, cls: type[T]) -> T:
    """Validate ``config.options`` into ``cls``; problems become ``ConfigError`` naming the key."""
    try:
        return msgspec.convert(config.options, cls, str_keys=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        known = ", ".join(sorted(cls.__struct_fields__))
        if m := _MISSING.search(text):
            raise config_error(config, m.group(1), "is required but missing") from None
        if m := _UNKNOWN.search(text):
            problem = f"is not an option of this source type; known options: {known}"
            raise config_error(config, m.group(1), problem) from None
        key = "options"
        if m := _PATH.search(text):
            key = m.group(1) or "options"
        problem = _PATH.sub("", text).strip(" -")
        raise config_error(config, key, problem) from None


def positive(config: SourceConfig, key: str, value: float | int | None, *, allow_zero: bool = False) -> None:
    """Check a numeric option is > 0 (or >= 0)."""
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise config_error(config, key, f"must be {bound}, got {value}")


def check_retry(config: SourceConfig, options: RetryOptions) -> None:
    positive(config, "backoff_initial", options.backoff_initial)
    positive(config, "backoff_max", options.backoff_max)
    positive(config, "max_attempts", options.max_attempts)
    if options.backoff_max < options.backoff_initial:
        problem = f"must be >= backoff_initial ({options.backoff_initial}), got {options.backoff_max}"
        raise config_error(config, "backoff_max", problem)


def check_http_url(
    config: SourceConfig,
    key: str,
    url: str,
    *,
    schemes: tuple[str, ...] = ("http", "https"),
    strip: bool = True,
) -> str:
    """Check a URL option has one of ``schemes`` and a host; returns it (without a trailing slash when
    ``strip``: for base URLs that paths are appended to)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in schemes or not rest.strip("/"):
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise config_error(config, key, f"must be a URL starting with {wanted}, got {url!r}")
    return url.rstrip("/") if strip else url


def retry_after(value: str | None, *, now: datetime | None = None) -> float:
    """The seconds of a ``Retry-After`` header (delay-seconds or an HTTP date); 0 when absent or
    unreadable."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
