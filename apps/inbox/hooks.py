"""Delivery result hook: in-app notifications that reached ``sent`` enter their recipient's inbox."""
from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from apps.notifications.models import Channel, Status

from . import pubsub
from .models import InboxState
from .selectors import inbox_item, inbox_unread_counts


def on_results(results, now) -> None:
    """Store the chunk's new inbox entries (one bulk insert) and, after commit,
    publish one live update per recipient."""
    sent = [r.notification for r in results
            if r.status == Status.SENT and r.notification.channel == Channel.IN_APP and r.notification.recipient_id]
    if not sent:
        return
    InboxState.objects.bulk_create(
        [InboxState(notification_id=n.id, recipient_id=n.recipient_id) for n in sent], ignore_conflicts=True,
    )
    by_recipient: dict[int, list[dict]] = defaultdict(list)
    for n in sent:
        by_recipient[n.recipient_id].append(inbox_item(n))
    counts = inbox_unread_counts(recipient_ids=list(by_recipient))
    messages = {
        rid: {"type": "items", "items": items, "unread_count": counts.get(rid, 0)}
        for rid, items in by_recipient.items()
    }
    transaction.on_commit(lambda: pubsub.publish(messages))
