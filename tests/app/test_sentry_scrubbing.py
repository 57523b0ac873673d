"""Sentry payloads (events, transactions, breadcrumbs, logs) of requests that sent email and SMS
carry no email address or phone number: sentry-sdk initialised as the service would, with
notifier.pii.SENTRY_SCRUBBING, and a transport that keeps envelopes instead of sending them."""
import json
import logging

import pytest
import sentry_sdk
from rest_framework.test import APIClient
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.transport import Transport

from notifier.pii import SENTRY_SCRUBBING

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "alice.liddell@example.com", "+12025550123"


class KeepingTransport(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.envelopes = []

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope)

    def payloads(self) -> str:
        out = []
        for envelope in self.envelopes:
            for item in envelope.items:
                out.append(item.payload.get_bytes().decode("utf-8", "replace"))
        return "\n".join(out)


@pytest.fixture
def sentry():
    transport = KeepingTransport()
    guard = sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1", transport=transport, integrations=[DjangoIntegration(),
        LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)], traces_sample_rate=1.0,
        enable_logs=True, max_request_body_size="always", include_local_variables=True, **SENTRY_SCRUBBING,
    )
    yield transport
    sentry_sdk.flush()
    guard.__exit__(None, None, None)


def test_sentry_payloads_of_a_run_that_sent_email_and_sms_hold_no_address(api_key, sentry, monkeypatch):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.raw}")
    assert client.post("/api/v1/notifications/email/", {"to": EMAIL, "subject": "s", "body": "b"},
                       format="json").status_code == 202
    assert client.post("/api/v1/notifications/sms/", {"to": PHONE, "body": "b"}, format="json").status_code == 202
    assert client.get(f"/api/v1/notifications/?recipient={EMAIL}").status_code == 200
    logging.getLogger("notifier.test").warning("slow relay for %s and %s", EMAIL, PHONE)  # a breadcrumb and a log
    logging.getLogger("notifier.test").error("could not reach %s", PHONE)  # an event

    from apps.notifications.api import views

    def crash(*, spec, api_key):
        recipient_address = spec.to  # a local variable Sentry records with the stack frame
        raise RuntimeError(f"provider refused {recipient_address}")

    monkeypatch.setattr(views, "notification_create_single", crash)
    response = client.post(f"/api/v1/notifications/email/?cc={EMAIL}",
                           {"to": EMAIL, "subject": f"For {PHONE}", "body": f"Dear {EMAIL}"}, format="json")
    assert response.status_code == 500
    sentry_sdk.flush()

    payloads = sentry.payloads()
    events = [json.loads(line) for line in payloads.splitlines() if line.startswith("{") and '"exception"' in line]
    assert events, "the crash reached the transport"
    for raw in (EMAIL, PHONE):
        leak = payloads.find(raw)
        assert leak == -1, f"{raw} leaked: ...{payloads[max(0, leak - 300):leak + 50]}"
    assert EMAIL.replace("@", "%40") not in payloads and PHONE.replace("+", "%2B") not in payloads
    # They were there, masked: in the exception, the request body and the breadcrumbs.
    assert "provider refused a***@example.com" in payloads
    assert "Dear a***@example.com" in payloads
    assert "slow relay for a***@example.com and +1********23" in payloads
