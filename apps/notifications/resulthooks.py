"""The transactional outbox of the result hooks (``policy.RESULT_HOOKS``: apps.inbox, apps.webhooks).

``delivery.results.record_results`` writes a batch of results and, in the same transaction, one
``ResultHookOutbox`` row per hook that has work in them (``write``; none when no hook is interested).
After the commit the same process runs those rows (``run``), each in a transaction of its own that takes
the row (``FOR UPDATE SKIP LOCKED``), runs the hook and deletes the row: the hook's writes and the row's
removal commit together, so a row's hook takes effect once, and a hook that raises rolls back itself
only. Its row stays, with the failure counted and a back-off (``next_attempt_at``); the recorded
results are never touched, so nothing is sent again.

The beat job ``notifier.result_hooks`` (``run_due``) runs the rows whose time has come: retries, and
rows a process left behind when it died between the commit and its hooks (a new row is left ``GRACE``
seconds to the process that wrote it). After ``NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS`` failed runs a row is
dead: ``dead_at`` set, no ``next_attempt_at``, an error logged; the admin lists it and can run it again.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifier.interrupts import INTERRUPTS
from notifier.pii import scrub_text
from notifier.retry import Backoff

from . import policy
from .models import ResultHookOutbox

logger = logging.getLogger(__name__)

TABLE = ResultHookOutbox._meta.db_table
# Seconds a new row is left to the process that wrote it before the beat job may take it.
GRACE = 10.0
# Between failed runs: 5 s, 10 s, 20 s ... (jittered), at most 10 minutes.
BACKOFF = Backoff(base=5.0, cap=600.0)


def write(pending: list[tuple[str, object]], now) -> list[int]:
    """Insert one row per ``(hook, data)`` (``data`` JSON-serialisable) in the caller's transaction, in
    one statement. Returns their ids, for ``run`` after the commit."""
    due = now + timedelta(seconds=GRACE)
    params: list = []
    for hook, data in pending:
        params += [hook, json.dumps(data, separators=(",", ":")), now, due]
    values = ", ".join(["(%s, %s::jsonb, %s, 0, %s, '')"] * len(pending))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (hook, data, created_at, attempts, next_attempt_at, last_error)"
                       f" VALUES {values} RETURNING id", params)
        return [row[0] for row in cursor.fetchall()]


def run(ids: list[int]) -> None:
    """Run the hooks of the rows ``ids`` (just committed by this process), each in its own transaction.
    Never raises (but for a soft time limit): a failure stays on its row for the beat job."""
    for outbox_id in ids:
        _run_one("id = %s", [outbox_id], timezone.now())


def run_due(*, limit: int = 1000, now=None) -> dict[str, int]:
    """Beat: run the rows whose ``next_attempt_at`` has passed (by ``now``), oldest first, one transaction
    each. Returns how many ran and how many failed (again)."""
    now = now or timezone.now()
    counts = {"ran": 0, "failed": 0}
    for _ in range(limit):
        outcome = _run_one("next_attempt_at <= %s ORDER BY next_attempt_at", [now], now)
        if outcome is None:
            break
        counts["ran" if outcome else "failed"] += 1
    if counts["ran"] or counts["failed"]:
        logger.warning("result hooks: %d outbox rows left behind or retried ran, %d failed",
                       counts["ran"], counts["failed"])
    return counts


def _run_one(where: str, params: list, now) -> bool | None:
    """Take one row matching ``where`` (skipping rows another process holds) and run its hook, deleting
    the row in the hook's transaction. None: no row to take; True: the hook ran; False: it failed (its
    next run is a back-off after ``now``)."""
    taken = None
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE id = (SELECT id FROM {TABLE} WHERE {where}"
                    f" LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, hook, data::text, attempts",
                    params,
                )
                taken = cursor.fetchone()
            if taken is None:
                return None
            hook = policy.result_hook(taken[1])
            if hook is None:
                raise LookupError(f"no result hook {taken[1]!r} is registered")
            hook.run(json.loads(taken[2]))
    except INTERRUPTS:
        raise  # rolled back: the row stays for the beat job
    except Exception as exc:  # noqa: BLE001 - the results are recorded; the row is retried
        if taken is None:
            logger.exception("could not take a result hook outbox row; the beat job will run it")
            return None
        _failed(taken[0], taken[1], taken[3] + 1, exc, now)
        return False
    return True


def _failed(outbox_id: int, hook: str, attempts: int, exc: BaseException, now) -> None:
    """Count a failed run on the row (rolled back, so still there) and set its next time, or give up."""
    error = scrub_text(f"{type(exc).__name__}: {exc}")[:2000]
    dead = attempts >= settings.NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS
    next_at = None if dead else now + timedelta(seconds=BACKOFF.delay(attempts))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET attempts = %s, last_error = %s, next_attempt_at = %s, dead_at = %s"
                f" WHERE id = (SELECT id FROM {TABLE} WHERE id = %s FOR UPDATE SKIP LOCKED)",
                [attempts, error, next_at, now if dead else None, outbox_id],
            )
    except INTERRUPTS:
        raise
    except Exception:  # noqa: BLE001 - the row keeps its previous time: the beat job runs it again
        logger.exception("could not record the failure of result hook outbox row %s", outbox_id)
    if dead:
        logger.error("result hook %s failed %d times on outbox row %s; given up (dead; the admin can run it "
                     "again): %s", hook, attempts, outbox_id, error, exc_info=exc)
    else:
        logger.warning("result hook %s failed on outbox row %s (attempt %d), retried in %s s: %s", hook,
                       outbox_id, attempts, f"{(next_at - now).total_seconds():.0f}", error, exc_info=exc)


def retry(ids: list[int]) -> int:
    """Make rows due now with a fresh budget (the admin's action for dead rows). Returns how many."""
    return ResultHookOutbox.objects.filter(pk__in=ids).update(
        next_attempt_at=timezone.now(), dead_at=None, attempts=0)
