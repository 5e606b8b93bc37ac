"""The seam where the audit log plugs into the query layer.

PRODUCT.md §1: every query, export and configuration change is recorded (who, what, when). The
append-only, hash-chained log itself belongs to ``murmur.privacy`` (a later issue); until it
registers a hook here, events are only logged. Each event is an action name and a JSON-able detail
dict, e.g. ``("search", {"query": "...", "since": None, "until": None})``,
``("monitor.add", {"monitor_id": "...", "query": "..."})``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

AuditHook = Callable[[str, Mapping[str, Any]], None]

_HOOKS: list[AuditHook] = []


def add_audit_hook(hook: AuditHook) -> None:
    """Have ``hook(action, details)`` called for every query-layer event, in order of registration."""
    _HOOKS.append(hook)


def remove_audit_hook(hook: AuditHook) -> None:
    _HOOKS.remove(hook)


def audit(action: str, details: Mapping[str, Any]) -> None:
    """Record one event (called by ``search``, ``store_stats``, ``grouped_counts``, ``add_monitor``,
    ``remove_monitor`` and ``list_monitors``)."""
    log.info("audit %s %s", action, dict(details))
    for hook in list(_HOOKS):
        hook(action, details)
