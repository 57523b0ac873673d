"""Creating notifications from validated specs: the acceptance policy, one insert of the rows and their
first events (``store``), then, after commit, their counts (``lifecycle``) and publish (``outbox``)."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .. import lifecycle, outbox, policy, store
from ..models import Notification, Status
from ..specs import Created, NotificationSpec


def notifications_create(*, specs: list[NotificationSpec], api_key=None,
                         lean: bool = False) -> list[Notification] | list[Created]:
    """Insert notifications and their first events in one transaction; publish after commit.

    Returns the saved notifications in the order of ``specs`` (``lean``: ``Created`` records).
    """
    now = timezone.now()
    policy.at_acceptance(specs, now)
    api_key_id = api_key.pk if api_key is not None else None
    pending: list = []
    notifications = store.insert_notifications(specs=specs, api_key_ids=[api_key_id] * len(specs), now=now, lean=lean,
                                         pending=pending)
    created = [(n.channel, n.category, n.priority, n.status) for n in notifications]
    created_ids = [n.id for n in notifications]
    transaction.on_commit(lambda: lifecycle.created(created, created_ids))
    to_publish = [(n.id, n.priority) for n in notifications if n.status == Status.QUEUED]
    if to_publish:
        outbox.publish_on_commit(to_publish, pending=pending)
    return notifications
