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

A result hook is a module with two functions. ``prepare(results, now)`` gets
the ``delivery.Result`` objects a worker is about to record (one chunk, or one
provider call of a slow chunk) and returns what the hook will need, as JSON
(ids and the results' values), or ``None`` when it has nothing to do: it runs
on the hot path, so it reads no more than it must (cached tables, at most one
query when someone is interested) and writes nothing. The results and one
outbox row per hook that returned something commit together
(``apps/notifications/resulthooks.py``); then ``run(data)`` does the work in a
transaction of its own, after the commit, and may register
``transaction.on_commit`` callbacks (publishing). A hook that raises is retried
from its outbox row and never rolls back the results. ``run`` runs once per row
(the row is deleted in its transaction), but possibly seconds later or in
another process (the beat job ``notifier.result_hooks``): it must read what it
needs from ``data`` and the database, not from the process.
Features plug in here (the in-app inbox, outbound webhook events) instead of
editing the pipeline.
"""
from __future__ import annotations

import importlib
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
# What apps.broadcasts' expansion knows how to apply in SQL (apps/broadcasts/expansion.py): with any other
# list, every broadcast notification goes through the checks themselves.
_DEFAULT_ACCEPTANCE = tuple(ACCEPTANCE_CHECKS)
SEND_CHECKS: list[str] = [
    "apps.providers.checks.suppressed_before_send",
    "apps.recipients.policy.check_before_send",
]
AFTER_SEND_HOOKS: list[str] = [
    "apps.providers.services.provider_outcomes_apply",
]
# Result hooks: modules with prepare() and run(); apps register theirs in AppConfig.ready() (apps.inbox,
# apps.webhooks). The path is also the name an outbox row gives its hook.
RESULT_HOOKS: list[str] = []
# Insert hooks run in the transaction that inserts notifications whose specs carry a workflow (a
# ``digest`` or a ``fallback``), with ``specs, ids, statuses, api_key_ids, now``; dispatch jobs run on
# every dispatcher run (``maintenance.dispatch_due``) and must never raise. apps.workflows registers
# both in AppConfig.ready() (docs/workflows.md).
INSERT_HOOKS: list[str] = []
DISPATCH_JOBS: list[str] = []


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


def acceptance_is_default() -> bool:
    """Whether the acceptance checks are this module's own (nothing added, removed or reordered)."""
    return tuple(ACCEPTANCE_CHECKS) == _DEFAULT_ACCEPTANCE


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


@lru_cache(maxsize=None)
def _modules(paths: tuple[str, ...]):
    return tuple(importlib.import_module(p) for p in paths)


def prepare_results(results, now) -> list[tuple[str, object]]:
    """``(hook, data)`` for each result hook with work in ``results``; nothing when none has any.

    A hook whose ``prepare`` fails is logged and skipped: the results are recorded all the same."""
    pending = []
    for path, hook in zip(RESULT_HOOKS, _modules(tuple(RESULT_HOOKS))):
        try:
            data = hook.prepare(results, now)
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001 - recording the results matters more
            logger.exception("result hook %s could not prepare %d results; they get no hook", path, len(results))
            continue
        if data is not None:
            pending.append((path, data))
    return pending


def result_hook(path: str):
    """The registered result hook module named ``path`` (an outbox row's ``hook``), or None."""
    paths = tuple(RESULT_HOOKS)
    return _modules(paths)[paths.index(path)] if path in paths else None


def after_insert(**rows) -> None:
    """The insert hooks, in the inserting transaction (their rows commit with the notifications)."""
    for hook in _load(tuple(INSERT_HOOKS)):
        hook(**rows)


def at_dispatch() -> None:
    """The dispatch jobs (each handles its own failures; the dispatcher goes on)."""
    for job in _load(tuple(DISPATCH_JOBS)):
        job()
