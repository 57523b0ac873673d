"""PendingPublish: a created group's entry lives from its commit to its publish's confirm; the dispatcher
makes due the rows of an entry left older than NOTIFIER_PUBLISH_GRACE (its web process died)."""
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.notifications import lifecycle, outbox
from apps.notifications.intake import groupcommit
from apps.notifications.intake.tickets import Ticket
from apps.notifications.intake.create import notifications_create
from apps.notifications.intake.items import validate_notification
from apps.notifications.models import Notification, NotificationEvent, PendingPublish
from apps.notifications.specs import NotificationSpec
from apps.notifications.store import insert_notifications as notifications_insert

pytestmark = pytest.mark.django_db(transaction=True)  # the publisher thread's own connection sees the rows


def _specs(count, *, scheduled=0):
    later = timezone.now() + timedelta(hours=1)
    return [NotificationSpec(channel="email", category="transactional", priority="normal", to=f"u{i}@example.com",
                             content={"subject": "s", "body": "b"}, scheduled_for=later if i < scheduled else None)
            for i in range(count)]


@pytest.fixture
def held_broker(monkeypatch):
    """A broker whose confirm comes only when the test releases it."""
    release, published = threading.Event(), []

    def publish(items):
        assert release.wait(10), "the test never released the broker"
        published.extend(str(i) for i, _ in items)

    monkeypatch.setattr(outbox, "publish_deliveries", publish)
    yield release, published
    release.set()
    outbox.publisher_drain()


def test_a_group_commit_writes_one_entry_with_its_rows_and_the_confirmed_publish_deletes_it(api_key, held_broker):
    release, published = held_broker
    tickets = [Ticket([validate_notification(channel="email", data={
        "to": f"u{i}@example.com", "subject": "s", "body": "b"})], api_key.api_key.pk) for i in range(3)]

    groupcommit.create_group(tickets)  # the rows are committed; the publish waits for the broker

    ids = [str(t.result[0].id) for t in tickets]
    [entry] = PendingPublish.objects.all()
    assert str(entry.id) == ids[0]  # the group's first queued row
    release.set()
    assert outbox.publisher_drain(timeout=10)
    assert sorted(published) == sorted(ids)
    assert not PendingPublish.objects.exists()


def test_a_batch_by_copy_writes_one_entry_keyed_by_its_first_queued_row_and_settles_it_once_published(held_broker):
    release, published = held_broker
    release.set()
    created = notifications_create(specs=_specs(40, scheduled=3))  # > bulk.SMALL_BATCH rows: COPY
    assert outbox.publisher_drain(timeout=10)

    assert len(published) == 37
    assert not PendingPublish.objects.exists()
    assert str(created[3].id) == published[0]


def test_a_failed_publish_marks_the_rows_due_and_deletes_their_entry(monkeypatch):
    def broker_down(items):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(outbox, "publish_deliveries", broker_down)
    created = notifications_create(specs=_specs(2))
    assert outbox.publisher_drain(timeout=10)

    assert all(n.next_attempt_at is not None for n in Notification.objects.filter(id__in=[c.id for c in created]))
    assert not PendingPublish.objects.exists()


def test_the_dispatcher_makes_due_only_queued_unclaimed_rows_of_entries_older_than_the_grace(settings):
    pending = []
    rows = notifications_insert(specs=_specs(4, scheduled=1), api_key_ids=[None] * 4, now=timezone.now(),
                                pending=pending)
    scheduled, queued, claimed, sent = (Notification.objects.get(id=n.id) for n in rows)
    Notification.objects.filter(id=claimed.id).update(status="sending", claimed_at=timezone.now())
    Notification.objects.filter(id=sent.id).update(status="sent")
    assert [str(p) for p in pending] == [str(queued.id)]

    settings.NOTIFIER_PUBLISH_GRACE = 60
    assert lifecycle.recover_unconfirmed_publishes() == 0  # its web process may still confirm it
    assert PendingPublish.objects.count() == 1

    settings.NOTIFIER_PUBLISH_GRACE = 0.001
    assert lifecycle.recover_unconfirmed_publishes() == 1
    assert not PendingPublish.objects.exists()
    assert Notification.objects.get(id=queued.id).next_attempt_at is not None
    for other in (scheduled, claimed, sent):
        assert Notification.objects.get(id=other.id).next_attempt_at == other.next_attempt_at
    assert NotificationEvent.objects.filter(notification_id=queued.id,
                                            detail="republished: its publish was never confirmed").count() == 1
    assert lifecycle.recover_unconfirmed_publishes() == 0


def test_with_no_grace_no_entry_is_written_and_nothing_is_recovered(settings):
    settings.NOTIFIER_PUBLISH_GRACE = 0
    pending = []
    notifications_insert(specs=_specs(2), api_key_ids=[None] * 2, now=timezone.now(), pending=pending)

    assert pending == [] and not PendingPublish.objects.exists()
    assert lifecycle.recover_unconfirmed_publishes() == 0
