"""The batch path end to end: API → one COPY → a message per chunk → real workers → SMTP."""
from __future__ import annotations

import pytest
from django.db.models import Count
from rest_framework import status

from apps.notifications.models import Notification, NotificationEvent
from tests.stack import wait_for

pytestmark = pytest.mark.integration

URL = "/api/v1/notifications/batch/"


def _email(i: int, **extra) -> dict:
    return {"channel": "email", "to": f"user{i}@example.com", "subject": f"Batch {i}", "body": f"Body {i}", **extra}


def _statuses(ids) -> dict[str, int]:
    return dict(Notification.objects.filter(id__in=ids).values_list("status").annotate(n=Count("id")))


def test_a_1000_item_batch_is_accepted_in_order_and_every_item_is_sent(api, stack, smtp_sink):
    stack.worker(concurrency=2)
    items = [_email(i) for i in range(1000)]

    response = api.post(URL, {"notifications": items}, format="json")

    assert response.status_code == status.HTTP_202_ACCEPTED, response.content[:500]
    results = response.json()["results"]
    assert len(results) == 1000 and all(r["status"] == "queued" for r in results)
    ids = [r["id"] for r in results]
    assert len(set(ids)) == 1000
    wait_for(lambda: _statuses(ids) == {"sent": 1000}, timeout=90, interval=0.5, message="1000 sent")
    # In order: the i-th result is the i-th item.
    to_by_id = {str(i): to for i, to in Notification.objects.filter(id__in=ids).values_list("id", "to")}
    assert [to_by_id[i] for i in ids] == [f"user{i}@example.com" for i in range(1000)]
    # Each mail arrived once, and each row's history is queued → sending → sent.
    delivered = smtp_sink.by_notification()
    assert sorted(delivered) == sorted(ids)
    assert all(len(mails) == 1 for mails in delivered.values())
    histories = NotificationEvent.objects.filter(notification_id__in=ids).values("notification_id").annotate(
        n=Count("id"))
    assert {h["n"] for h in histories} == {3}


def test_invalid_items_are_refused_and_the_valid_ones_of_the_same_batch_are_sent(api, stack, smtp_sink):
    stack.worker(concurrency=1)
    items = [_email(0), _email(1, to="nope"), {"channel": "sms", "to": "+12025550123"}, _email(3)]

    results = api.post(URL, {"notifications": items}, format="json").json()["results"]

    assert results[1] == {"errors": {"to": ["Enter a valid email address."]}}
    assert results[2] == {"errors": {"body": ["This field is required."]}}
    ids = [results[0]["id"], results[3]["id"]]
    wait_for(lambda: _statuses(ids) == {"sent": 2}, timeout=60, message="the two valid items sent")
    assert sorted(m["To"] for m in smtp_sink.messages) == ["user0@example.com", "user3@example.com"]
    assert Notification.objects.count() == 2


def test_more_than_1000_items_are_refused_and_nothing_is_sent(api, stack):
    response = api.post(URL, {"notifications": [_email(i) for i in range(1001)]}, format="json")

    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert Notification.objects.count() == 0


def test_a_transient_failure_of_one_item_retries_that_item_only(api, stack, smtp_sink):
    """One message of a chunk gets 451; the rest of the chunk is sent at once and never resent."""
    smtp_sink.fail_next(1)  # the first DATA of the chunk
    stack.worker(concurrency=1)
    stack.beat()  # dispatch_due releases the retry when its backoff has passed

    results = api.post(URL, {"notifications": [_email(i) for i in range(5)]}, format="json").json()["results"]
    ids = [r["id"] for r in results]

    wait_for(lambda: _statuses(ids) == {"sent": 5}, timeout=60, interval=0.2, message="all five sent")
    attempts = dict(Notification.objects.filter(id__in=ids).values_list("id", "attempts"))
    assert sorted(attempts.values()) == [1, 1, 1, 1, 2]
    [retried] = [i for i, a in attempts.items() if a == 2]
    retried_events = list(NotificationEvent.objects.filter(notification_id=retried).values_list("status", flat=True))
    assert retried_events == ["queued", "sending", "queued", "sending", "sent"], retried_events
    for other in (i for i, a in attempts.items() if a == 1):
        assert list(NotificationEvent.objects.filter(notification_id=other).values_list("status", flat=True)) == [
            "queued", "sending", "sent"]
    # The SMTP server saw each notification accepted exactly once.
    assert sorted(smtp_sink.by_notification()) == sorted(ids)
    assert all(len(m) == 1 for m in smtp_sink.by_notification().values())
