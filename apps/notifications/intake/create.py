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


def notifications_create_for_recipients(*, spec: NotificationSpec, recipient_ids: str, count: int,
                                        api_key_id=None) -> int:
    """``spec`` for each of ``count`` recipients (``recipient_ids``: the text of a PostgreSQL bigint array),
    inserted in one statement (``store.insert_for_recipients``), counted and published after commit like
    ``notifications_create``'s. The caller vouches that the acceptance policy lets every one of them through
    unchanged (``policy.acceptance_is_default`` and apps/broadcasts/expansion.py): no check runs here."""
    if not count:
        return 0
    pending: list = []
    ids, status = store.insert_for_recipients(spec=spec, recipient_ids=recipient_ids, count=count,
                                              api_key_id=api_key_id, now=timezone.now(), pending=pending)
    created = [(spec.channel, spec.category, spec.priority, status)] * count
    transaction.on_commit(lambda: lifecycle.created(created, ids))
    if status == Status.QUEUED:
        outbox.publish_on_commit([(i, spec.priority) for i in ids], pending=pending)
    return count


class KeyRef:
    """What ``notifications_create`` reads of an API key (its pk), where only the pk is at hand."""

    __slots__ = ("pk",)

    def __init__(self, pk):
        self.pk = pk
