"""Status changes made outside the worker are counted in ``notifier_notifications_total`` like the
worker's (they all go through ``apps.notifications.lifecycle``)."""
import pytest
from django.utils import timezone

from apps.apikeys.models import default_project_id
from apps.notifications.models import Notification, NotificationEvent, Status
from apps.recipients.models import Recipient
from apps.recipients.services import recipient_erase
from apps.webhooks.services import webhook_deliveries_create
from notifier import metrics


def _count(channel: str, status: str) -> float:
    return metrics.NOTIFICATIONS.labels(channel, status)._value.get()


@pytest.mark.django_db
def test_erasing_a_recipient_counts_the_notifications_it_cancels(api, purge_queues,
                                                                 django_capture_on_commit_callbacks):
    Recipient.objects.create(external_id="erase-me", email="erase@example.com")
    later = (timezone.now() + timezone.timedelta(hours=1)).isoformat()
    response = api.post("/api/v1/notifications/email/", {"recipient": "erase-me", "subject": "s", "body": "b",
                                                          "scheduled_for": later}, format="json")
    assert response.status_code == 202, response.content
    before = _count("email", Status.CANCELLED)
    with django_capture_on_commit_callbacks(execute=True):
        assert recipient_erase(recipient=Recipient.objects.get(external_id="erase-me"))["cancelled"] == 1
    assert _count("email", Status.CANCELLED) - before == 1
    notification = Notification.objects.get(pk=response.json()["id"])
    assert notification.status == Status.CANCELLED
    assert NotificationEvent.objects.filter(notification=notification, status=Status.CANCELLED).count() == 1


@pytest.mark.django_db
def test_webhook_deliveries_are_counted_as_queued(django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr("apps.notifications.outbox.publish", lambda items, **options: None)
    before = _count("webhook", Status.QUEUED)
    payload = {"type": "notification.sent", "data": {"id": "00000000-0000-0000-0000-000000000001"}}
    with django_capture_on_commit_callbacks(execute=True):
        rows = webhook_deliveries_create([("1", payload, "notification.sent", default_project_id())])
    assert _count("webhook", Status.QUEUED) - before == 1
    assert Notification.objects.get(pk=rows[0].pk).status == Status.QUEUED
    assert list(NotificationEvent.objects.filter(notification_id=rows[0].pk).values_list("status", "detail")) == [
        (Status.QUEUED, "notification.sent")]
