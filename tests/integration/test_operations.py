"""Metrics and logs from real worker processes on real queues."""
import json

import pytest
from django.test import Client
from rest_framework import status

from apps.notifications.models import Notification
from tests.metrics_helpers import scrape, total, value
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def _post_email(api, to="alice@example.com", **headers):
    response = api.post("/api/v1/notifications/email/", {"to": to, "subject": "Receipt", "body": "Thanks."},
                        format="json", **headers)
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()["id"]


def _status(notification_id):
    return Notification.objects.get(pk=notification_id).status


def test_metrics_count_sends_and_failures_made_by_worker_processes(api, stack, smtp_sink):
    """The web process never delivers: what /metrics shows here was written by the workers."""
    stack.worker()
    client = Client()
    before = scrape(client)

    sent_id = _post_email(api)
    wait_for(lambda: _status(sent_id) == "sent", timeout=60, message="first email sent")
    smtp_sink.reject_rcpt("550 5.1.1 No such user")
    failed_id = _post_email(api, to="nobody@example.com")
    wait_for(lambda: _status(failed_id) == "failed", timeout=60, message="second email failed")

    def delta(name, **labels):
        return total(scrape(client), name, **labels) - total(before, name, **labels)

    wait_for(lambda: delta("notifier_notifications_total", channel="email", status="failed") == 1,
             timeout=30, message="failed counted")
    after = scrape(client)
    counted = "notifier_notifications_total"
    assert value(after, counted, channel="email", status="sent") - value(before, counted, channel="email",
                                                                         status="sent") == 1
    assert value(after, counted, channel="email", status="sending") - value(before, counted, channel="email",
                                                                            status="sending") == 2
    assert value(after, counted, channel="email", status="queued") - value(before, counted, channel="email",
                                                                           status="queued") == 2
    attempts = "notifier_delivery_attempts_total"
    assert total(after, attempts, provider="smtp", outcome="accepted") - total(
        before, attempts, provider="smtp", outcome="accepted") == 1
    assert total(after, attempts, provider="smtp", outcome="permanent_error") - total(
        before, attempts, provider="smtp", outcome="permanent_error") == 1
    latency = "notifier_delivery_latency_seconds_count"
    assert value(after, latency, priority="normal") - value(before, latency, priority="normal") == 1
    # The worker consumes every priority queue, which /metrics reads from RabbitMQ.
    assert value(after, "notifier_queue_consumers", queue="notifications.high") >= 1


def test_worker_logs_are_json_lines_with_the_notification_id_and_a_masked_address(api, stack):
    worker = stack.worker(env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "DELIVERY_LOG_LEVEL": "INFO"})
    notification_id = _post_email(api, HTTP_X_REQUEST_ID="req-ops-test-1")
    wait_for(lambda: _status(notification_id) == "sent", timeout=60, message="email sent")

    def delivery_lines():
        lines = [line for line in worker.output().splitlines() if notification_id in line]
        return [json.loads(line) for line in lines] if any('"notifier.delivery"' in line for line in lines) else []

    entries = wait_for(delivery_lines, timeout=30, message="the delivery log line")
    output = worker.output()
    assert "alice@example.com" not in output
    [entry] = [e for e in entries if e["logger"] == "notifier.delivery"]
    assert entry["notification_id"] == notification_id
    assert entry["status"] == "sent"
    assert (entry["channel"], entry["priority"], entry["attempt"], entry["provider"]) == ("email", "normal", 1, "smtp")
    assert entry["to"] == "a***@example.com"
    assert entry["request_id"] == "req-ops-test-1"
    # Every line the logging system wrote is JSON (Celery's start-up banner is not a log line).
    log_lines = [line for line in output.splitlines() if line.startswith("{")]
    assert log_lines and all(isinstance(json.loads(line), dict) for line in log_lines)
