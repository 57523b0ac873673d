"""Beat's jobs on notifications (run from ``notifications.maintenance``): ``dispatch_due`` releases
scheduled notifications and retries whose time has come, expires overdue ones and makes good publishes
never confirmed; ``sweep`` recovers rows whose worker died or whose message was lost. The statements are
``lifecycle``'s; the publishing is ``outbox``'s."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from . import lifecycle, outbox, policy
from .delivery.results import record_results
from .models import Notification, Status
from .specs import Result

logger = logging.getLogger(__name__)


def dispatch_due(*, limit: int = 5000, max_rounds: int = 20) -> int:
    """Queue scheduled notifications and retries whose time has come; expire overdue ones.

    Claims due rows with ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers
    never take the same row. Returns how many were queued.
    """
    lifecycle.expire_overdue(limit=limit)
    lifecycle.recover_unconfirmed_publishes()
    policy.at_dispatch()  # workflows (apps.workflows): digests and fallback steps whose time has come
    total = 0
    for _ in range(max_rounds):
        taken, released = lifecycle.release_due(limit=limit, publish=outbox.publish)
        if not taken:
            return total
        total += released
        if taken < limit:
            break
    return total


def sweep(*, limit: int = 10000) -> dict[str, int]:
    """Recover stuck work: ``sending`` rows whose worker died, ``queued`` rows whose message was lost.

    Both are made due again; the dispatcher publishes them. Each time a row's claim times out it
    counts on the row (``claim_timeouts``); at ``NOTIFIER_MAX_CLAIM_TIMEOUTS`` the row is ``failed``
    ("delivery never completed") and dead-lettered instead: a notification whose worker dies or
    hangs every time (a poison row, a relay that never answers) is not taken back for ever.
    Attempts do not change: whether its provider was called is not known.
    """
    with transaction.atomic():
        reclaimed, republished, abandoned = lifecycle.reclaim_stuck(limit=limit)
        if abandoned:
            _abandon(abandoned)
    if reclaimed or republished or abandoned:
        logger.warning("sweep: %d reclaimed from dead workers, %d republished, %d failed after %d claim timeouts",
                       len(reclaimed), len(republished), len(abandoned), settings.NOTIFIER_MAX_CLAIM_TIMEOUTS)
        dispatch_due()
    return {"reclaimed": len(reclaimed), "republished": len(republished), "failed": len(abandoned)}


def _abandon(claims: dict) -> None:
    """Fail rows whose claim timed out too often (``claims``: id -> times; the rows are still
    ``sending``, locked by the caller's transaction) as a worker fails them: events, result hooks,
    metrics and dead letters."""
    results = []
    for n in Notification.objects.filter(id__in=list(claims)).order_by("id"):
        error = f"delivery never completed (claimed {claims[n.id]} times)"
        results.append(Result(n, Status.FAILED, error=error, detail=f"{error}: its worker died or hung each time",
                              attempted=False, dead_letter=True))
    record_results(results)
