"""Beat's jobs run on their own queue and worker pool (notifications.maintenance), never behind deliveries."""
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification, NotificationEvent
from apps.notifications.specs import NotificationSpec
from notifier.devtools.smtp_sink import SmtpSink
from tests.stack import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def stalled_relay():
    """An SMTP relay that holds every DATA command for two minutes."""
    relay = SmtpSink()
    relay.delay = 120
    relay.start()
    yield relay
    relay.stop()


def _email(priority, *, tag, scheduled_for=None):
    [n] = notifications_create(specs=[NotificationSpec(
        channel="email", category="transactional", priority=priority, to=f"{tag}@example.com",
        content={"subject": tag, "body": "hello"}, scheduled_for=scheduled_for)])
    return n


def test_a_scheduled_notification_is_dispatched_on_time_while_every_high_priority_slot_is_stalled(
        stack, smtp_sink, stalled_relay):
    # Both slots of the high pool are stuck in a DATA command that takes two minutes.
    high = stack.worker(queues="notifications.high", concurrency=2, prefetch=1,
                        env={"EMAIL_PORT": str(stalled_relay.port), "EMAIL_TIMEOUT": "180"})
    stuck = [_email("high", tag=f"stuck{i}").id for i in range(2)]  # two messages: one per slot
    wait_for(lambda: Notification.objects.filter(id__in=stuck, status="sending").count() == 2, timeout=60,
             message="both high-priority slots to be sending to the stalled relay")

    stack.worker(queues="notifications.normal", concurrency=1)
    stack.worker(queues="notifications.maintenance", concurrency=2, pool="threads")
    stack.beat()
    due = timezone.now() + timedelta(seconds=4)
    scheduled = _email("normal", tag="reminder", scheduled_for=due)
    assert scheduled.status == "scheduled"

    sent = wait_for(lambda: (n := Notification.objects.get(pk=scheduled.pk)).status == "sent" and n, timeout=60,
                    message="the scheduled notification to be sent")
    released = NotificationEvent.objects.get(notification_id=scheduled.pk, detail="released by the dispatcher")
    assert due <= released.at <= due + timedelta(seconds=5), (due, released.at)
    assert [m["X-Notifier-Id"] for m in smtp_sink.messages] == [str(scheduled.pk)]
    # The high pool was busy all along: its two notifications are still in the stalled DATA commands.
    assert high.alive()
    assert Notification.objects.filter(id__in=stuck, status="sending").count() == 2
    assert stalled_relay.messages == []
    assert sent.sent_at >= due
