"""Policy checks run when a notification is accepted and again right before it is sent.

Each check is a function named here by dotted path, so features (preferences
and quiet hours, frequency caps, the suppression list) plug in without the
pipeline knowing them.

An acceptance check takes ``(specs, now)`` and may set, on each
``NotificationSpec``: ``status = "suppressed"`` with ``status_detail``, or
``hold_until`` (a datetime) with ``status_detail``. Specs already suppressed
are skipped by later checks.

A send check takes ``(notifications, now)`` (claimed ``Notification`` rows with
``recipient`` loaded) and returns ``{notification.id: Verdict}`` for those it
stops.

A result hook takes ``(results, now)``: the ``delivery.Result`` objects a
worker just wrote for one chunk. It runs inside the transaction that wrote
them (so its own writes commit or roll back with them) and may register
``transaction.on_commit`` callbacks for side effects such as publishing.
Features plug in here (the in-app inbox, outbound webhook events) instead of
editing the pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.utils.module_loading import import_string

ACCEPTANCE_CHECKS: list[str] = []
SEND_CHECKS: list[str] = []
RESULT_HOOKS: list[str] = []


@dataclass(frozen=True)
class Verdict:
    status: str  # "suppressed" or "scheduled" (held)
    detail: str
    hold_until: datetime | None = None


@lru_cache(maxsize=None)
def _load(paths: tuple[str, ...]):
    return tuple(import_string(p) for p in paths)


def at_acceptance(specs, now) -> None:
    for check in _load(tuple(ACCEPTANCE_CHECKS)):
        pending = [s for s in specs if s.status != "suppressed"]
        if not pending:
            return
        check(pending, now)


def before_send(notifications, now) -> dict:
    verdicts: dict = {}
    for check in _load(tuple(SEND_CHECKS)):
        pending = [n for n in notifications if n.id not in verdicts]
        if not pending:
            break
        verdicts.update(check(pending, now) or {})
    return verdicts


def after_results(results, now) -> None:
    for hook in _load(tuple(RESULT_HOOKS)):
        hook(results, now)
