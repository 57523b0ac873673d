"""Masking of email addresses and phone numbers (notifier.pii)."""
import io
import logging

import pytest

from notifier.pii import PiiFilter, mask_address, mask_email, mask_phone, scrub_data, scrub_event, scrub_text


def test_scrub_text_masks_emails_and_e164_numbers_plain_and_url_encoded():
    text = "to alice@example.com, +12025550123, ?to=bob%40example.org&p=%2B447700900123"
    scrubbed = scrub_text(text)
    assert scrubbed == "to a***@example.com, +1********23, ?to=b***%40example.org&p=%2B4*********23"


def test_scrub_data_masks_keys_values_and_objects():
    class Request:
        def __repr__(self):
            return "<Request to carol@example.com>"

    data = {"carol@example.com": ["+12025550123", 3, None, True], "req": Request(), "n": ("x", b"dan@example.com")}
    assert scrub_data(data) == {"c***@example.com": ["+1********23", 3, None, True],
                                "req": "<Request to c***@example.com>", "n": ["x", "d***@example.com"]}


def test_scrub_event_covers_request_body_and_breadcrumbs():
    event = {"request": {"data": '{"to": "erin@example.com"}', "query_string": "to=erin%40example.com"},
             "breadcrumbs": {"values": [{"message": "sms to +12025550123"}]}}
    text = repr(scrub_event(event, {}))
    assert "erin@example.com" not in text and "erin%40" not in text and "+12025550123" not in text


def test_log_filter_masks_message_arguments_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PiiFilter())
    logger = logging.getLogger("tests.pii")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("sending to %s", "frank@example.com")
        try:
            raise ValueError("refused +12025550123")
        except ValueError:
            logger.exception("failed for %(who)s", {"who": "grace@example.com"})
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "frank@example.com" not in out and "grace@example.com" not in out and "+12025550123" not in out
    assert "sending to f***@example.com" in out and "ValueError: refused +1********23" in out


def test_settings_logging_puts_the_filter_on_every_handler_django_configured():
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)  # what django.setup() does
    configured = [h for name in ("", "django", "django.request", "django.server")
                  for h in logging.getLogger(name).handlers if type(h).__module__.startswith(("logging", "django"))]
    assert configured
    for handler in configured:
        assert sum(isinstance(f, PiiFilter) for f in handler.filters) == 1, handler



def test_email_keeps_first_letter_and_domain():
    assert mask_email("alice@example.com") == "a***@example.com"


def test_phone_keeps_country_prefix_and_last_two_digits():
    assert mask_phone("+12025550123") == "+1********23"


def test_scrub_text_masks_every_address_and_number():
    text = "sent to bob.smith@example.org and +447911123456 ok"
    scrubbed = scrub_text(text)
    assert "bob.smith@example.org" not in scrubbed and "+447911123456" not in scrubbed
    assert "b***@example.org" in scrubbed


def test_scrub_data_walks_nested_structures():
    data = {"a": ["x carol@example.net"], "b": {"c": "+33612345678"}, "n": 3}
    out = scrub_data(data)
    assert "carol@example.net" not in str(out) and "+33612345678" not in str(out)
    assert out["n"] == 3


def test_mask_address_by_channel():
    assert mask_address("sms", "+12025550123").endswith("23")
    assert mask_address("push", "abcdefghijklmnop") == "abcd…mnop"


@pytest.mark.parametrize("text,kept,gone", [
    ("Authorization: Bearer nk_1a2b3c4d_abcdefghijklmnopqrstuvwxyz0123456789", "Bearer [Filtered]", "abcdefgh"),
    ("key nk_1a2b3c4d_abcdefghijklmnopqrstuvwxyz0123456789 refused", "nk_1a2b3c4d_[Filtered] refused", "abcdefgh"),
    ("GET /stream/?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl&x=1", "?token=[Filtered]&x=1", "c2lnbm"),
    ("sig eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl done", "sig [Filtered] done", "c2lnbm"),
    ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_[Filtered]", "MfKQ9r8"),
    ("Basic dXNlcjpwYXNz", "Basic [Filtered]", "dXNlcjpwYXNz"),
    ("POST https://fcm.googleapis.com/fcm/send/abc:APA91b" + "x1" * 40, "/fcm/send/[Filtered]", "APA91b"),
])
def test_scrub_secrets_filters_credentials_and_tokens_in_text(text, kept, gone):
    from notifier.pii import scrub_secrets

    scrubbed = scrub_secrets(text)
    assert kept in scrubbed and gone not in scrubbed


@pytest.mark.parametrize("text", [
    "Basic checks passed", "# " + "-" * 70, "release 3922f3f0a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736",
])
def test_scrub_secrets_leaves_ordinary_text_alone(text):
    from notifier.pii import scrub_secrets

    assert scrub_secrets(text) == text


def test_scrub_data_filters_values_under_secret_keys_whole():
    from notifier.pii import scrub_data

    assert scrub_data({"headers": {"Authorization": "Bearer x"}, "token": "abc", "device_tokens": ["a", "b"],
                       "keys": {"p256dh": "x", "auth": "y"}, "input_tokens": 5, "to": "bob@example.com"}) == {
        "headers": {"Authorization": "[Filtered]"}, "token": "[Filtered]", "device_tokens": "[Filtered]",
        "keys": "[Filtered]", "input_tokens": 5, "to": "b***@example.com"}
