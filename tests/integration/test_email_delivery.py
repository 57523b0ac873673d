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
