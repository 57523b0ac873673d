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

An after-send hook takes ``[(notification, message, outcome)]`` (every
provider outcome of the chunk, a push fanned out to devices giving several)
and acts on them in bulk, e.g. suppressing dead addresses. A failing hook is
logged and never stops results from being recorded.

A result hook takes ``(results, now)``: the ``delivery.Result`` objects a
worker just wrote for one chunk. It runs inside the transaction that wrote
them (so its own writes commit or roll back with them) and may register
``transaction.on_commit`` callbacks for side effects such as publishing.
Features plug in here (the in-app inbox, outbound webhook events) instead of
editing the pipeline.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.utils.module_loading import import_string

from notifier.interrupts import INTERRUPTS

logger = logging.getLogger(__name__)

ACCEPTANCE_CHECKS: list[str] = [
    "apps.providers.checks.suppressed_at_acceptance",  # the suppression list
    "apps.recipients.policy.check_at_acceptance",  # preferences and quiet hours
    # Keep the frequency cap last: a notification suppressed by an earlier check uses no slot.
    "apps.notifications.caps.frequency_caps",
]
SEND_CHECKS: list[str] = [
    "apps.providers.checks.suppressed_before_send",
    "apps.recipients.policy.check_before_send",
]
AFTER_SEND_HOOKS: list[str] = [
    "apps.providers.services.provider_outcomes_apply",
]
# Result hooks: apps register theirs in AppConfig.ready() (apps.inbox, apps.webhooks).
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
        pending = [n for n in notifications if n.id not in verdicts] if verdicts else notifications
        if not pending:
            break
        verdicts.update(check(pending, now) or {})
    return verdicts


def after_send(items) -> None:
    if not items:
        return
    for hook in _load(tuple(AFTER_SEND_HOOKS)):
        try:
            hook(items)
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001 - recording the results matters more
            logger.exception("after-send hook %s failed", getattr(hook, "__name__", hook))

def after_results(results, now) -> None:
    for hook in _load(tuple(RESULT_HOOKS)):
        hook(results, now)
