"""What apps/notifications calls (each call site is marked "workflows" there).

- ``workflows_hold``: an insert hook (``policy.INSERT_HOOKS``, registered in ``apps.WorkflowsConfig``), run
  by ``store.insert_notifications`` in the transaction that inserts the rows: digest members join their
  groups, fallback steps are stored.
- ``workflows_release_due``: a dispatch job (``policy.DISPATCH_JOBS``), run by ``maintenance.dispatch_due``
  (``notifier.dispatch_due``) every time: digests whose window ended are sent, sent digests settle their
  members, due fallback steps are decided.
- ``selectors.workflow_of``: from the notification detail serializer (the status API).
- ``validation``: the request fields and their checks, from ``intake/validation.py``.
"""
from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from apps.notifications.models import Status
from notifier.interrupts import INTERRUPTS

from . import digests, fallback

logger = logging.getLogger(__name__)


def workflows_hold(*, specs: list, ids: list, statuses: list[str], api_key_ids: list, now: datetime) -> None:
    """Store the digest memberships and fallback steps of notifications just inserted (same transaction)."""
    held, steps = [], []
    for spec, notification_id, status, api_key_id in zip(specs, ids, statuses, api_key_ids):
        if spec.digest is not None and status == Status.SCHEDULED:  # a suppressed one is not held
            held.append((spec, notification_id, api_key_id))
        elif spec.fallback:
            steps.append((spec, notification_id, api_key_id))
    if held:
        digests.hold(held, now)
    if steps:
        fallback.hold(steps, now)


def workflows_release_due(*, now: datetime | None = None) -> dict[str, int]:
    """The dispatcher's part: release digests, settle their members, decide fallback steps.

    Each job is on its own: one that fails is logged and the others (and the dispatcher) go on."""
    now = now or timezone.now()
    counts = {}
    for name, job in (("digests_released", lambda: digests.release_due(now=now)),
                      ("digests_settled", digests.settle),
                      ("fallback_steps", lambda: fallback.release_due(now=now))):
        try:
            counts[name] = job()
        except INTERRUPTS:
            raise
        except Exception:  # noqa: BLE001 - retried on the next dispatcher run
            logger.exception("workflows: %s failed; the next dispatcher run tries again", name)
            counts[name] = 0
    return counts
