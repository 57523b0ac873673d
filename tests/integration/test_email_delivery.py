"""Email through the whole pipeline: API → PostgreSQL → RabbitMQ → worker → SMTP."""
import pytest
from rest_framework import status

from apps.notifications.models import Notification
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def _post_email(api, **extra):
    body = {"to": "alice@example.com", "subject": "Your receipt", "body": "Thanks for your order.", **extra}
    response = api.post("/api/v1/notifications/email/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()["id"]


def _status(notification_id):
    return Notification.objects.get(pk=notification_id).status


def test_email_posted_to_api_arrives_at_smtp_server_and_ends_sent(api, stack, smtp_sink):
    stack.worker()
    notification_id = _post_email(api)

    wait_for(lambda: _status(notification_id) == "sent", message="status sent")

    [message] = smtp_sink.messages
    assert message["Subject"] == "Your receipt"
    assert message["To"] == "alice@example.com"
    assert message.get_content().strip() == "Thanks for your order."
    detail = api.get(f"/api/v1/notifications/{notification_id}/").json()
    assert [e["status"] for e in detail["events"]] == ["queued", "sending", "sent"]
    assert detail["attempts"] == 1
    assert detail["provider"] == "smtp"
    assert detail["provider_message_id"] == message["Message-ID"]


def test_a_clients_malformed_mail_fails_at_once_and_leaves_the_breaker_closed_for_everyone(api, stack, smtp_sink):
    """Issue 22, item 4: with a breaker threshold of 2, four unsendable messages (domains that do not
    encode to IDNA; the API accepts them) fail with one attempt each and do not open the breaker."""
    from notifier import circuit

    stack.worker(concurrency=1, env={"NOTIFIER_CIRCUIT_THRESHOLD": "2", "NOTIFIER_CIRCUIT_COOLDOWN": "300"})
    bad = [_post_email(api, to=to) for to in ["bob@m\ufffdnchen.de", "bob@" + "\u00e9" * 60 + ".com"] * 2]
    wait_for(lambda: all(_status(i) == "failed" for i in bad), timeout=60, message="the malformed mail failed")

    good = _post_email(api)
    wait_for(lambda: _status(good) == "sent", timeout=60, message="the good mail sent")

    for n in Notification.objects.filter(id__in=bad):
        assert n.attempts == 1 and "(permanent)" in n.last_error
    [state] = [s for s in circuit.states() if s["channel"] == "email"]
    assert state["state"] == "closed" and state["failures"] == 0 and state["times_opened"] == 0
    assert [m["To"] for m in smtp_sink.messages] == ["alice@example.com"]
