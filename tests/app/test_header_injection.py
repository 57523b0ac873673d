"""No control character reaches a mail header (issue 22, item 3).

The API refuses them in a subject or an address (400); a template context value that carries one is
made one line; the SMTP provider refuses to write a header that holds one. What goes on the wire is
read from a real SMTP server (the sink) as bytes.
"""
import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework import status

from apps.notifications.delivery.worker import deliver_chunk
from apps.notifications.models import Notification
from apps.templating.models import Template
from apps.templating.services import clear_cache
from notifier.channels.base import Message, ProviderError
from notifier.channels.email import SmtpEmailProvider
from notifier.channels.registry import check_configuration, providers_for
from notifier.headers import MESSAGE

pytestmark = pytest.mark.django_db

# The characters the issue names (Python's email package breaks header lines at all of them but
# U+001F), then the rest of the kind: CR, LF, tab, other C0 and C1 controls, DEL, U+2029.
NAMED = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028"]
OTHERS = ["\r\n", "\n", "\t", "\x01", "\x7f", "\x9f", "\u2029"]
HEADER_LINE = re.compile(rb"^([!-9;-~]+):")  # a field name (printable ASCII but ':') and a colon


def _names(raw: bytes) -> list[str]:
    """The header field names of a message as it came over the wire, checking every header line."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = []
    for line in head.split(b"\r\n"):
        assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", line), line  # no control byte but folding tabs
        if line[:1] in (b" ", b"\t"):
            assert names, line  # a continuation line follows a header line
            continue
        match = HEADER_LINE.match(line)
        assert match, f"not a header line: {line!r}"
        names.append(match.group(1).decode())
    return names


@pytest.fixture
def relay(settings, smtp_sink):
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", smtp_sink.port, 2
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "email": ["smtp"]}
    providers_for.cache_clear()
    return smtp_sink


@pytest.fixture
def receipt():
    clear_cache()
    Template.objects.create(slug="receipt", channel="email", locale="", subject="Receipt for {{ name }}",
                            body="Thanks, {{ name }}.")
    yield
    clear_cache()


def _post(api, **fields):
    return api.post("/api/v1/notifications/email/", fields, format="json")


@pytest.mark.parametrize("char", NAMED + OTHERS)
def test_a_subject_with_a_control_character_is_refused_with_400_by_the_single_and_the_batch_endpoint(api, char):
    item = {"to": "alice@example.com", "subject": f"Hello{char}Bcc: eve@example.com", "body": "b"}
    single = _post(api, **item)
    batch = api.post("/api/v1/notifications/batch/", {"notifications": [{"channel": "email", **item}]},
                     format="json")

    assert single.status_code == status.HTTP_400_BAD_REQUEST
    assert single.json()["errors"] == {"subject": [MESSAGE]}
    assert batch.json()["results"][0]["errors"] == {"subject": [MESSAGE]}
    assert not Notification.objects.exists()


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\x1c", "\x1f", "\x01", "\x7f"])
def test_an_address_with_a_control_character_is_refused_with_400_for_a_notification_and_a_recipient(api, char):
    address = f'"a{char}b"@example.com'  # a quoted local part: Django's email validator lets these in
    single = _post(api, to=address, subject="s", body="b")
    recipient = api.put("/api/v1/recipients/r1/", {"email": address}, format="json")

    assert single.status_code == status.HTTP_400_BAD_REQUEST
    assert single.json()["errors"] == {"to": ["Enter a valid email address."]}
    assert recipient.status_code == status.HTTP_400_BAD_REQUEST
    assert recipient.json()["errors"] == {"email": ["Enter a valid email address."]}


@pytest.mark.parametrize("char", NAMED + OTHERS)
def test_a_control_character_in_a_template_context_value_is_replaced_and_the_mail_has_exactly_its_headers(
        api, relay, receipt, char):
    response = _post(api, to="alice@example.com", template="receipt",
                     context={"name": f"Ana{char}Bcc: eve@example.com{char}"})
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    clean = _post(api, to="bob@example.com", template="receipt", context={"name": "Bob"})

    assert deliver_chunk([response.json()["id"], clean.json()["id"]]) == {"sent": 2}

    by_to = {m["To"]: (m, raw) for m, raw in zip(relay.messages, relay.raw)}
    message, raw = by_to["alice@example.com"]
    assert message["Subject"] == "Receipt for Ana Bcc: eve@example.com"
    assert message["Bcc"] is None
    assert _names(raw) == _names(by_to["bob@example.com"][1])  # the same header set as a clean mail
    assert sorted(_names(raw)) == sorted(["Content-Type", "MIME-Version", "Content-Transfer-Encoding", "Subject",
                                          "From", "To", "Date", "Message-ID", "X-Notifier-Id",
                                          "List-Unsubscribe", "List-Unsubscribe-Post"])


def _mail(**extra):
    return Message(**{"notification_id": "0190b6c2-0000-7000-8000-000000000001", "channel": "email",
                      "to": "alice@example.com", "subject": "Your receipt", "body": "Thanks.", **extra})


@pytest.mark.parametrize("field, value", [
    *[("subject", f"Hello{char}Bcc: eve@example.com") for char in NAMED + OTHERS],
    ("subject", "Hello\x0bworld"),  # without the check this went out as a raw "world" header line
    ("to", '"a\x0bb"@example.com'),
    ("headers", {"X-Tag": "a\u2028Bcc: eve@example.com"}),
    ("headers", {"X-Tag\x0b": "a"}),
])
def test_the_smtp_provider_never_writes_a_header_with_a_control_character_and_the_rest_of_the_chunk_goes_out(
        smtp_sink, field, value):
    provider = SmtpEmailProvider(host="127.0.0.1", port=smtp_sink.port, from_email="notifier@example.com", timeout=2)
    results = provider.send_many([_mail(**{field: value}), _mail(to="bob@example.com")])

    assert isinstance(results[0], ProviderError)
    assert results[0].permanent and results[0].bad_input and results[0].code == "invalid_header"
    assert isinstance(results[1], str)
    assert [m["To"] for m in smtp_sink.messages] == ["bob@example.com"]


def test_a_row_stored_with_a_control_character_in_its_subject_fails_at_once_without_sending(relay):
    now = timezone.now()
    n = Notification.objects.create(channel="email", to="alice@example.com", status="queued",
                                    content={"subject": "Hello\x0bBcc: eve@example.com", "body": "b"},
                                    created_at=now, updated_at=now, queued_at=now)

    assert deliver_chunk([n.id]) == {"failed": 1}
    n.refresh_from_db()
    assert n.attempts == 1 and n.next_attempt_at is None
    assert "control character U+000B" in n.last_error and "permanent" in n.last_error
    assert relay.messages == []


@pytest.mark.parametrize("setting", ["DEFAULT_FROM_EMAIL", "NOTIFIER_PUBLIC_URL", "NOTIFIER_UNSUBSCRIBE_MAILTO"])
def test_a_setting_that_goes_into_every_mails_headers_may_not_hold_a_control_character(settings, setting):
    setattr(settings, setting, "notifier@example.com\x0bBcc: eve@example.com")
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "email": ["smtp"]}
    providers_for.cache_clear()
    with pytest.raises(ImproperlyConfigured, match=f"{setting} holds the control character U\\+000B"):
        check_configuration()
    with pytest.raises(ImproperlyConfigured, match=setting):
        providers_for("email")
