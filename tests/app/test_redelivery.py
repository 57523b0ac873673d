"""Workers never send one notification twice when its message is redelivered; each mail carries
the notification id as an idempotency token (X-Notifier-Id) and its own Message-ID."""
import threading

import pytest

from apps.notifications.delivery.worker import deliver_chunk
from apps.notifications.models import Notification


def _create(api, n=3):
    ids = []
    for i in range(n):
        response = api.post("/api/v1/notifications/email/",
                            {"to": f"user{i}@example.com", "subject": "s", "body": "b"}, format="json")
        ids.append(response.json()["id"])
    return ids


@pytest.mark.django_db
def test_a_redelivered_chunk_sends_nothing_twice(api, smtp_sink, settings):
    settings.EMAIL_PORT = smtp_sink.port
    ids = _create(api)
    assert deliver_chunk(ids) == {"sent": 3}
    assert deliver_chunk(ids) == {}  # the same message delivered again
    assert len(smtp_sink.messages) == 3
    assert {m["X-Notifier-Id"] for m in smtp_sink.messages} == set(ids)
    for message in smtp_sink.messages:
        row = Notification.objects.get(pk=message["X-Notifier-Id"])
        assert row.provider_message_id == message["Message-ID"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_chunk_at_once_send_each_notification_once(api, smtp_sink, settings):
    settings.EMAIL_PORT = smtp_sink.port
    ids = _create(api, n=10)
    start = threading.Barrier(2)
    results = []

    def worker():
        from django.db import connection

        start.wait()
        try:
            results.append(deliver_chunk(ids))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.get("sent", 0) for r in results) == 10
    assert sorted(m["X-Notifier-Id"] for m in smtp_sink.messages) == sorted(ids)
