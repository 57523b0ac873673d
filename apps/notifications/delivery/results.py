"""Recording what a chunk's sends came to: results written in one statement, then counted, logged,
dead-lettered and handed to the result hooks after the commit; and rows put back unsent."""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from operator import attrgetter

from django.db import transaction
from django.utils import timezone

from notifier import metrics, pii
from notifier.addresses import destination
from notifier.pii import scrub_text

from .. import lifecycle, outbox, policy, resulthooks, store
from ..models import Notification, Status
from ..specs import Result

# One line per delivery result (its own logger, so its level can be raised at high volume).
delivery_log = logging.getLogger("notifier.delivery")

_sent_labels = attrgetter("notification.priority", "notification.created_at")


def record_results(results: list[Result]) -> None:
    """Write every result and its event with one statement (``store.write_results``); count them and
    dead-letter after commit, and run the result hooks that have work in them from their outbox
    (``resulthooks.py``: one row per such hook, written in the same transaction, run after the commit).
    """
    if not results:
        return
    now = timezone.now()
    # What the result hooks (inbox, webhook events) will need: usually nothing (no in-app result, no
    # endpoint listening), and then no outbox row is written and nothing runs after the commit.
    hooks = policy.prepare_results(results, now)
    with transaction.atomic():
        store.write_results(results, now)
        letters = [
            {
                "id": str(r.notification.id), "channel": r.notification.channel,
                "priority": r.notification.priority, "category": r.notification.category,
                "attempts": r.notification.attempts + (1 if r.attempted else 0),
                "last_error": scrub_text(r.error),  # no PII on the broker
                "failed_at": now.isoformat(),
            }
            for r in results if r.dead_letter
        ]
        if letters:
            transaction.on_commit(lambda: outbox.dead_letter(letters))
        transaction.on_commit(lambda: _observe_results(results, now))
        if hooks:
            # The hooks run after the commit, each in its own transaction: one that fails is retried from
            # its outbox row and never rolls back these results (which would send them again).
            outbox_ids = resulthooks.write(hooks, now)
            transaction.on_commit(lambda: resulthooks.run(outbox_ids))


def _observe_results(results: list[Result], now: datetime) -> None:
    """Metrics (by counts) and one structured log line per result, once the results are committed."""
    lifecycle.results_entered(results)
    sent = Counter(_sent_labels(r) for r in results if r.status == Status.SENT)
    metrics.latency_observed({(priority, created_at, now): count for (priority, created_at), count in sent.items()})
    every = delivery_log.isEnabledFor(logging.INFO)  # off by default (DELIVERY_LOG_LEVEL): failures only
    if not every and not delivery_log.isEnabledFor(logging.WARNING):
        return
    for r in results:
        if r.status == Status.FAILED:
            level = logging.WARNING
        elif every:
            level = logging.INFO
        else:
            continue
        n = r.notification
        delivery_log.log(level, "notification %s", r.status, extra={
            "notification_id": str(n.id), "channel": n.channel, "priority": n.priority, "category": n.category,
            "status": r.status, "attempt": n.attempts + 1 if r.attempted else n.attempts,
            "provider": r.provider, "provider_message_id": r.provider_message_id,
            "to": pii.mask_address(n.channel, _address(n)), "error": r.error,
            "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
        })


def _address(n: Notification) -> str:
    # Only a recipient already loaded (deliver_chunk loads them in bulk): no query per row.
    recipient = n.recipient if not n.to and n.recipient_id and Notification.recipient.is_cached(n) else None
    return destination(n.channel, n.to, recipient)


def put_back(notifications: list[Notification], claimed_at: datetime, detail: str) -> int:
    """Move claimed rows that were never handed to a provider back to ``queued`` (with an event) and,
    after commit, republish them in two chunks. Only rows still held by this claim are moved."""
    if not notifications:
        return 0
    rows = store.put_back([n.id.hex for n in notifications], claimed_at, detail, timezone.now())
    if rows:
        items = [(i, priority) for i, priority, _, _ in rows]
        half = -(-len(items) // 2)
        lifecycle.entered_after_commit([(channel, category, priority, Status.QUEUED)
                                        for _, priority, channel, category in rows])
        transaction.on_commit(lambda: outbox.publish_or_mark_due(items, chunk_size=half))
    return len(rows)
