"""Digests and channel fallback with real workers, real beat (the dispatcher) on RabbitMQ and a real SMTP
server: held notifications wait in PostgreSQL and the dispatcher releases them (docs/workflows.md)."""
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import status

from apps.notifications.models import Notification, Status
from apps.recipients.models import Recipient
from apps.templating.models import Template
from apps.workflows.models import DigestGroup, DigestState, FallbackState, FallbackStep
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def _post(api, channel, **body):
    response = api.post(f"/api/v1/notifications/{channel}/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()


def _status(notification_id):
    return Notification.objects.get(pk=notification_id).status


def _mails_to(smtp_sink, address):
    return [m for m in smtp_sink.messages if m["To"] == address]


def test_a_digest_is_sent_once_at_its_window_end_with_every_item(api, stack, smtp_sink):
    Recipient.objects.create(external_id="alice", email="alice@example.com")
    Template.objects.create(slug="comments-digest", channel="email", subject="{{ count }} new comments",
                            body="{% for item in items %}* {{ item.subject }}: {{ item.body }}\n{% endfor %}")
    stack.worker()
    stack.beat()
    digest = {"key": "comments", "window_seconds": 3, "template": "comments-digest"}

    opened = timezone.now()
    ids = [_post(api, "email", recipient="alice", subject=f"Comment {n}", body=f"text {n}", digest=digest)["id"]
           for n in range(1, 4)]
    other = _post(api, "email", to="bob@example.com", subject="Receipt", body="Thanks")["id"]  # not digested
    wait_for(lambda: _status(other) == Status.SENT, timeout=30, message="the plain email sent")
    assert _mails_to(smtp_sink, "alice@example.com") == []  # held while the window is open
    assert all(_status(i) == Status.SCHEDULED for i in ids)

    wait_for(lambda: len(_mails_to(smtp_sink, "alice@example.com")) == 1, timeout=60, message="the digest mail")
    assert timezone.now() - opened >= timedelta(seconds=3)
    wait_for(lambda: all(_status(i) == Status.SENT for i in ids), timeout=30, message="members sent with it")
    time.sleep(3)  # a few more dispatcher runs: nothing more is sent

    [mail] = _mails_to(smtp_sink, "alice@example.com")
    assert mail["Subject"] == "3 new comments"
    assert mail.get_content().strip().splitlines() == ["* Comment 1: text 1", "* Comment 2: text 2",
                                                       "* Comment 3: text 3"]
    [group] = DigestGroup.objects.all()
    assert group.state == DigestState.SETTLED
    assert mail["X-Notifier-Id"] == str(group.digest_id)
    assert Notification.objects.get(pk=group.digest_id).status == Status.SENT
    for notification_id in ids:
        detail = api.get(f"/api/v1/notifications/{notification_id}/").json()
        assert (detail["status"], detail["provider"], detail["provider_message_id"]) == (
            "sent", "digest", str(group.digest_id))
        assert detail["workflow"]["digest"]["state"] == "settled"


def _in_app_with_fallback(api, recipient):
    return _post(api, "in_app", recipient=recipient, title="New message", body="Bob: lunch?",
                 fallback=[{"channel": "email", "after_seconds": 2, "unless": "read"}])["id"]


def test_an_unread_in_app_notification_is_sent_by_email_and_a_read_one_is_not(api, stack, smtp_sink):
    Recipient.objects.create(external_id="unread", email="unread@example.com")
    Recipient.objects.create(external_id="reader", email="reader@example.com")
    stack.worker()
    stack.beat()

    unread = _in_app_with_fallback(api, "unread")
    read = _in_app_with_fallback(api, "reader")
    # Its inbox entry is written by the result hook right after the sent status commits.
    wait_for(lambda: api.post(f"/api/v1/recipients/reader/inbox/{read}/read/").status_code == 200, timeout=30,
             interval=0.2, message="the in-app notification read in the inbox")

    wait_for(lambda: len(_mails_to(smtp_sink, "unread@example.com")) == 1, timeout=60, message="the fallback email")
    wait_for(lambda: FallbackStep.objects.get(source_id=read).state != FallbackState.PENDING, timeout=30,
             message="the read one's step decided")
    time.sleep(2)  # more dispatcher runs

    [mail] = _mails_to(smtp_sink, "unread@example.com")
    assert (mail["Subject"], mail.get_content().strip()) == ("New message", "Bob: lunch?")
    sent_at = Notification.objects.get(pk=unread).sent_at
    step = FallbackStep.objects.get(source_id=unread)
    assert step.state == FallbackState.SENT and step.decided_at >= sent_at + timedelta(seconds=2)
    wait_for(lambda: _status(step.notification_id) == Status.SENT, timeout=30, message="the fallback email sent")
    assert _mails_to(smtp_sink, "reader@example.com") == []
    assert FallbackStep.objects.get(source_id=read).state == FallbackState.SKIPPED
