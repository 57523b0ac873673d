"""Delivery result hook: in-app notifications that reached ``sent`` enter their recipient's inbox.

``prepare`` runs as the results are recorded and keeps only the ids of the in-app ``sent`` results (the
outbox row); ``run`` adds them to the inbox after the results' commit (``apps/notifications/resulthooks.py``).
"""
from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from apps.notifications.models import Channel, Notification, Status

from . import pubsub
from .models import InboxState
from .selectors import inbox_item, inbox_unread_counts


def prepare(results, now) -> dict | None:
    """The ids of the in-app notifications that were sent to a recipient; None when there are none."""
    ids = [r.notification.id.hex for r in results
           if r.status == Status.SENT and r.notification.channel == Channel.IN_APP and r.notification.recipient_id]
    return {"ids": ids} if ids else None


def run(data: dict) -> None:
    """Store their inbox entries (one bulk insert; an entry already there is left alone) and, after
    commit, publish one live update per recipient."""
    notifications = list(
        Notification.objects.filter(pk__in=data["ids"], recipient_id__isnull=False)
        .only("id", "recipient_id", "content", "category", "created_at")
    )
    if not notifications:
        return
    InboxState.objects.bulk_create(
        [InboxState(notification_id=n.id, recipient_id=n.recipient_id) for n in notifications],
        ignore_conflicts=True,
    )
    by_recipient: dict[int, list[dict]] = defaultdict(list)
    for n in notifications:
        by_recipient[n.recipient_id].append(inbox_item(n))
    counts = inbox_unread_counts(recipient_ids=list(by_recipient))
    messages = {
        rid: {"type": "items", "items": items, "unread_count": counts.get(rid, 0)}
        for rid, items in by_recipient.items()
    }
    transaction.on_commit(lambda: pubsub.publish(messages))
