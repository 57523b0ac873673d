"""Broadcasts end to end: API → Broadcast row → notifier.broadcast_expand on a real maintenance worker →
pages through the batch path → real delivery workers → the SMTP sink. Every subscriber gets exactly one
mail; muted, suppressed and address-less subscribers get none."""
from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import status

from apps.broadcasts.models import Broadcast
from apps.notifications.models import Notification
from apps.providers.services import SuppressionInput, suppressions_record
from apps.recipients.models import Recipient
from apps.recipients.services import preferences_update
from apps.topics.models import Topic
from apps.topics.services import topic_subscribe
from tests.stack import wait_for

pytestmark = pytest.mark.integration

EMAIL = "/api/v1/notifications/email/"
MAINTENANCE = "notifications.maintenance"
DELIVERY = "notifications.high,notifications.normal,notifications.low"


def _topic(api_key, count: int, key: str = "news") -> Topic:
    project_id = api_key.api_key.project_id
    topic = Topic.objects.create(project_id=project_id, key=key)
    Recipient.objects.bulk_create([Recipient(project_id=project_id, external_id=f"s{i}", email=f"s{i}@example.com")
                                   for i in range(count)])
    topic_subscribe(topic=topic, external_ids=[f"s{i}" for i in range(count)])
    return topic


def _broadcast(api, **extra) -> str:
    response = api.post(EMAIL, {"topic": "news", "subject": "News", "body": "Fresh news.", **extra}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()["broadcast_id"]


def _mailed(smtp_sink) -> Counter:
    return Counter(m["To"] for m in smtp_sink.messages)


def _counts(api, broadcast_id) -> dict:
    Broadcast.objects.filter(pk=broadcast_id).update(counts_at=None)  # count now, not the cached figures
    return {k: v for k, v in api.get(f"/api/v1/broadcasts/{broadcast_id}/").json()["counts"].items() if v}


def test_workers_deliver_a_broadcast_once_to_every_subscriber_and_skip_muted_and_suppressed_ones(
        api, api_key, stack, smtp_sink):
    _topic(api_key, 2500)
    preferences_update(recipient=Recipient.objects.get(external_id="s7"), topics={"news": {"email": False}})
    suppressions_record(items=[SuppressionInput(channel="email", address="s8@example.com", reason="hard_bounce")])
    Recipient.objects.filter(external_id="s9").update(email="")
    env = {"NOTIFIER_BROADCAST_PAGE": "700"}  # several pages, and chunks of the page
    stack.worker(queues=MAINTENANCE, concurrency=2, pool="threads", env=env)
    stack.worker(queues=DELIVERY, concurrency=2)

    broadcast_id = _broadcast(api)

    wait_for(lambda: _counts(api, broadcast_id).get("sent") == 2497, timeout=120, interval=0.5,
             message="2,497 sent")
    assert _counts(api, broadcast_id) == {"sent": 2497, "suppressed": 1}
    mailed = _mailed(smtp_sink)
    expected = {f"s{i}@example.com" for i in range(2500)} - {"s7@example.com", "s8@example.com", "s9@example.com"}
    assert set(mailed) == expected
    assert set(mailed.values()) == {1}  # exactly one each
    broadcast = Broadcast.objects.get(pk=broadcast_id)
    assert (broadcast.status, broadcast.created, broadcast.skipped) == ("expanded", 2498, 1)
    assert not Notification.objects.filter(recipient__external_id="s7").exists()


def test_an_expander_killed_mid_broadcast_is_resumed_by_beat_and_nobody_gets_two(api, api_key, stack, smtp_sink):
    _topic(api_key, 6000)
    slow = {"NOTIFIER_BROADCAST_PAGE": "100", "NOTIFIER_BROADCAST_SLICE": "120"}
    expander = stack.worker(queues=MAINTENANCE, concurrency=2, pool="threads", env=slow)
    stack.worker(queues=DELIVERY, concurrency=2)

    broadcast_id = _broadcast(api)
    wait_for(lambda: Broadcast.objects.get(pk=broadcast_id).created >= 300, timeout=60, interval=0.05,
             message="the expansion under way")
    expander.kill(signal.SIGKILL)
    left = Broadcast.objects.get(pk=broadcast_id)
    assert left.status == "expanding" and left.created < 6000

    stack.worker(queues=MAINTENANCE, concurrency=2, pool="threads")
    stack.beat()  # notifier.broadcasts_due finds it expanding with no expander, and starts one

    wait_for(lambda: _counts(api, broadcast_id).get("sent") == 6000, timeout=180, interval=0.5,
             message="6,000 sent")
    per_recipient = Counter(Notification.objects.filter(broadcast_id=broadcast_id)
                            .values_list("recipient_id", flat=True))
    assert len(per_recipient) == 6000 and set(per_recipient.values()) == {1}
    mailed = _mailed(smtp_sink)
    assert len(mailed) == 6000 and set(mailed.values()) == {1}


def test_a_scheduled_broadcast_is_sent_at_its_time_and_a_cancelled_one_never(api, api_key, stack, smtp_sink):
    _topic(api_key, 50)
    stack.worker(concurrency=2)
    stack.beat()

    at = timezone.now() + timedelta(seconds=4)
    scheduled = _broadcast(api, scheduled_for=at.isoformat(), subject="Scheduled")
    cancelled = _broadcast(api, scheduled_for=at.isoformat(), subject="Cancelled")
    assert api.post(f"/api/v1/broadcasts/{cancelled}/cancel/").status_code == status.HTTP_200_OK

    wait_for(lambda: _counts(api, scheduled).get("sent") == 50, timeout=60, interval=0.5, message="50 sent")
    first_sent = Notification.objects.filter(broadcast_id=scheduled).order_by("sent_at").first().sent_at
    assert first_sent >= at
    assert Counter(m["Subject"] for m in smtp_sink.messages) == {"Scheduled": 50}
    assert not Notification.objects.filter(broadcast_id=cancelled).exists()
    assert Broadcast.objects.get(pk=cancelled).status == "cancelled"
