"""Input limits: 413, 415, nesting, NUL and surrogates, field lengths, SMS segments; strings kept verbatim."""
import json

import pytest
from rest_framework import status

from apps.notifications.intake.validation import MAX_BATCH_ITEMS, SMS_MAX_SEGMENTS
from apps.notifications.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/email/"
EMAIL = {"to": "alice@example.com", "subject": "Hi", "body": "Hello"}


def _raw(api, body: bytes, content_type="application/json", url=URL):
    return api.generic("POST", url, body, content_type=content_type)


def test_a_body_over_the_limit_is_413(api, settings):
    settings.NOTIFIER_MAX_BODY_BYTES = 1000
    response = _raw(api, json.dumps({**EMAIL, "body": "x" * 2000}).encode())
    assert response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    assert response.json()["errors"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""])
def test_a_body_that_is_not_json_is_415(api, content_type):
    response = _raw(api, b"to=alice@example.com", content_type=content_type)
    assert response.status_code == status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    assert response.json()["errors"]["detail"]


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    json.dumps({**EMAIL, "metadata": {"a": json.loads("[" * 500 + "]" * 500)}}).encode(),
    b'{"to": "alice@example.com", "subject": "a\\u0000b", "body": "x"}',
    b'{"to": "alice@example.com", "subject": "s", "body": "x", "metadata": {"k": "\\u0000"}}',
    b'{"to": "alice@example.com", "subject": "\\ud800", "body": "x"}',
    b'{"to": "alice@example.com", "subject": "s", "body": "x", "metadata": {"\\udfff": 1}}',
    b'{"to": "alice@example.com", "subject": "s", "body": NaN}',
    b'{"to": "alice@example.com", "subject": "s", "body": "\xff\xfe"}',
    b'"just a string"',
    b"[]",
])
def test_malformed_or_unstorable_json_is_400_never_500(api, body):
    response = _raw(api, body)
    assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content[:300]
    assert "errors" in response.json()
    assert Notification.objects.count() == 0


def test_emoji_written_as_surrogate_pairs_are_fine(api):
    response = _raw(api, b'{"to": "alice@example.com", "subject": "\\ud83d\\ude00 sale", "body": "x"}')
    assert response.status_code == status.HTTP_202_ACCEPTED
    assert Notification.objects.get().content["subject"] == "\U0001F600 sale"


@pytest.mark.parametrize("field, length", [("subject", 999), ("body", 100_001)])
def test_fields_over_their_length_are_400(api, field, length):
    response = api.post(URL, {**EMAIL, field: "x" * length}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert field in response.json()["errors"]


def test_metadata_too_deep_or_too_large_is_400(api):
    deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}
    response = api.post(URL, {**EMAIL, "metadata": deep}, format="json")
    assert response.status_code == 400 and "metadata" in response.json()["errors"]
    response = api.post(URL, {**EMAIL, "metadata": {"blob": "x" * 20_000}}, format="json")
    assert response.status_code == 400 and "metadata" in response.json()["errors"]


def test_sms_longer_than_the_segment_limit_is_400(api):
    fits = "x" * (153 * SMS_MAX_SEGMENTS)
    assert api.post("/api/v1/notifications/sms/", {"to": "+12025550123", "body": fits},
                    format="json").status_code == 202
    unicode_too_long = "ж" * (67 * SMS_MAX_SEGMENTS + 1)  # UCS-2: 67 per segment
    response = api.post("/api/v1/notifications/sms/", {"to": "+12025550123", "body": unicode_too_long},
                        format="json")
    assert response.status_code == 400
    assert "segments" in response.json()["errors"]["body"][0]


def test_strings_are_stored_verbatim_html_included(api):
    body = {**EMAIL, "subject": "  <b>Tom & Jerry</b>  ", "body": "<script>alert(1)</script>\n",
            "html": "<p>Hi &amp; bye</p>", "metadata": {"note": "<i>raw</i>"}}
    response = api.post(URL, body, format="json")
    assert response.status_code == 202
    n = Notification.objects.get()
    assert n.content == {"subject": body["subject"], "body": body["body"], "html": body["html"]}
    detail = api.get(f"/api/v1/notifications/{n.id}/").json()
    assert detail["metadata"] == {"note": "<i>raw</i>"}  # JSON answers are not HTML: nothing escaped


def test_the_batch_limit_is_one_thousand():
    assert MAX_BATCH_ITEMS == 1000


class ChunkedInput:
    """A ``wsgi.input`` as a server gives it for a chunked body: read to its end, no length known.
    Counts what was read from it."""

    def __init__(self, data: bytes):
        self.data, self.taken = data, 0

    def read(self, size=-1):
        end = len(self.data) if size is None or size < 0 else self.taken + size
        piece = self.data[self.taken:end]
        self.taken += len(piece)
        return piece

    def readline(self, size=-1):
        raise AssertionError("the body is read in pieces")


def _chunked(api, stream, url=URL):
    """A request without Content-Length through Django's handler (the test client's), as a WSGI
    server passes it on: ``Transfer-Encoding`` and a terminated ``wsgi.input``."""
    return api.generic("POST", url, b"", content_type="application/json", CONTENT_LENGTH="",
                       HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input": stream, "wsgi.input_terminated": True})


def test_a_chunked_body_over_the_limit_is_413_after_reading_no_more_than_the_limit(api, settings):
    settings.NOTIFIER_MAX_BODY_BYTES = 1000
    stream = ChunkedInput(json.dumps({**EMAIL, "body": "x" * 5000}).encode())
    response = _chunked(api, stream)
    assert response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    assert response.json() == {"errors": {"non_field_errors": ["Request body is over the limit of 1000 bytes."]}}
    assert stream.taken == 1001
    assert Notification.objects.count() == 0


def test_a_chunked_body_over_the_limit_is_413_without_a_key_too(settings):
    from rest_framework.test import APIClient

    settings.NOTIFIER_MAX_BODY_BYTES = 1000
    stream = ChunkedInput(b"x" * 5000)
    assert _chunked(APIClient(), stream).status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    assert stream.taken == 1001


def test_a_chunked_body_under_the_limit_is_read_by_the_view(api, settings):
    settings.NOTIFIER_MAX_BODY_BYTES = 1000
    response = _chunked(api, ChunkedInput(json.dumps(EMAIL).encode()))
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    assert Notification.objects.get().content["subject"] == "Hi"


def test_the_wsgi_application_refuses_a_chunked_body_over_the_limit_before_django_sees_it(settings):
    from config.wsgi import application

    stream, answer = ChunkedInput(b"x" * (5 * 1024 * 1024)), {}
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": URL, "HTTP_TRANSFER_ENCODING": "chunked",
               "wsgi.input": stream, "wsgi.input_terminated": True}  # too bare for Django: it must not get it
    body = b"".join(application(environ, lambda status, headers: answer.update(status=status, headers=headers)))
    assert answer["status"].startswith("413 ")
    assert json.loads(body)["errors"]["non_field_errors"]
    assert stream.taken == settings.NOTIFIER_MAX_BODY_BYTES + 1
