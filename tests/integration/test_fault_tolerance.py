"""Nothing is lost when a worker dies, and priorities do not wait behind each other."""
import signal
from collections import Counter

import pytest
from django.test import override_settings

from apps.notifications.intake.create import notifications_create
from apps.notifications.models import Notification
from apps.notifications.specs import NotificationSpec
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def _emails(count, *, priority="normal", category="transactional", tag="bulk"):
    specs = [
        NotificationSpec(channel="email", category=category, priority=priority, to=f"{tag}{i}@example.com",
                         content={"subject": f"{tag} {i}", "body": "hello"})
        for i in range(count)
    ]
    return [str(n.id) for n in notifications_create(specs=specs)]


@pytest.mark.slow
@override_settings(NOTIFIER_CHUNK_SIZE=50)
def test_a_worker_killed_with_sigkill_mid_batch_loses_nothing(stack, smtp_sink, capsys):
    smtp_sink.delay = 0.01
    env = {"NOTIFIER_CLAIM_TIMEOUT": "3", "NOTIFIER_SWEEP_INTERVAL": "1"}
    ids = _emails(400)
    victim = stack.worker(concurrency=2, env=env, prefetch=4)
    wait_for(lambda: len(smtp_sink.messages) >= 150, timeout=60, message="the first sends")

    victim.kill(signal.SIGKILL)
    victim.popen.wait(10)
    unsent_at_kill = Notification.objects.filter(id__in=ids).exclude(status="sent").count()
    assert unsent_at_kill > 0, "the kill should land in the middle of the batch"

    stack.worker(concurrency=2, env=env)
    stack.beat(env=env)
    wait_for(lambda: Notification.objects.filter(id__in=ids, status="sent").count() == len(ids), timeout=120,
             message="every notification to be sent after the kill")

    received = Counter(m["X-Notifier-Id"] for m in smtp_sink.messages)
    assert set(received) == set(ids), "every notification reached the SMTP server"
    duplicates = sum(count - 1 for count in received.values())
    with capsys.disabled():
        print(f"\n[sigkill] {len(ids)} notifications, {unsent_at_kill} unsent when the worker was killed, "
              f"{duplicates} duplicate deliveries (at-least-once)")


@override_settings(NOTIFIER_CHUNK_SIZE=25)
def test_high_priority_mail_posted_behind_a_low_priority_backlog_is_sent_first(api, stack, smtp_sink):
    smtp_sink.delay = 0.02
    low_ids = _emails(300, priority="low", category="marketing", tag="promo")
    one_session = {"NOTIFIER_SMTP_CONNECTIONS": "1"}  # the backlog drains at the sink's pace, one mail at a time
    stack.worker(queues="notifications.low", concurrency=1, prefetch=1, env=one_session)
    stack.worker(queues="notifications.high", concurrency=1, prefetch=1, env=one_session)
    wait_for(lambda: Notification.objects.filter(id__in=low_ids, status="sent").exists(), timeout=60,
             message="the low-priority backlog to start draining")

    response = api.post("/api/v1/notifications/email/", {
        "to": "ceo@example.com", "subject": "Sign-in code", "body": "123456", "category": "security_alert",
    }, format="json")
    assert response.json()["priority"] == "high"
    high = wait_for(lambda: (n := Notification.objects.get(pk=response.json()["id"])).status == "sent" and n,
                    timeout=30, message="the high-priority mail")

    low_unsent = Notification.objects.filter(id__in=low_ids).exclude(status="sent").count()
    assert low_unsent > 100, "the high-priority mail did not wait for the low-priority backlog"
    wait_for(lambda: Notification.objects.filter(id__in=low_ids, status="sent").count() == len(low_ids),
             timeout=120, message="the backlog to drain")
    low_sent_after = Notification.objects.filter(id__in=low_ids, sent_at__gt=high.sent_at).count()
    assert low_sent_after > 100
