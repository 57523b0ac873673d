"""POST /api/v1/notifications/batch/ and the lean item validator behind it (real PostgreSQL)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework import status
from rest_framework.exceptions import ValidationError

from apps.notifications.intake.items import ItemValidator
from apps.notifications.intake.validation import NotificationInputSerializer
from apps.notifications.models import Notification, NotificationEvent
from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/batch/"


def _email(i: int, **extra) -> dict:
    return {"channel": "email", "to": f"user{i}@example.com", "subject": f"Hello {i}", "body": "Body", **extra}


@pytest.fixture
def no_publish(monkeypatch):
    """These tests look at the rows and the answer; delivery is covered by the integration tests."""
    published = []
    monkeypatch.setattr("apps.notifications.outbox.publish_deliveries", lambda items: published.extend(items))
    return published


def test_it_accepts_a_batch_and_answers_one_result_per_item_in_order(
        api, no_publish, django_capture_on_commit_callbacks):
    items = [_email(i) for i in range(5)]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"notifications": items}, format="json")

    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["queued"] * 5
    rows = {str(n.id): n for n in Notification.objects.all()}
    assert [rows[r["id"]].to for r in results] == [f"user{i}@example.com" for i in range(5)]
    assert [rows[r["id"]].content["subject"] for r in results] == [f"Hello {i}" for i in range(5)]
    assert NotificationEvent.objects.filter(status="queued").count() == 5
    assert sorted(str(i) for i, _ in no_publish) == sorted(rows)


def test_invalid_items_get_their_own_errors_and_valid_ones_are_still_accepted(api, no_publish):
    items = [
        _email(0),
        _email(1, to="not-an-address"),
        {"channel": "sms", "to": "+12025550123", "body": "code 1234"},
        {"channel": "fax", "to": "x"},
        _email(4, subject=""),
        {"to": "a@example.com"},
        "just a string",
        {"channel": "sms", "to": "12345", "body": "x"},
        _email(8, recipient="nobody"),
    ]
    response = api.post(URL, {"notifications": items}, format="json")

    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    results = response.json()["results"]
    assert len(results) == len(items)
    assert results[0]["status"] == "queued"
    assert results[1] == {"errors": {"to": ["Enter a valid email address."]}}
    assert results[2]["status"] == "queued"
    assert results[3] == {"errors": {"channel": ['"fax" is not a valid choice.']}}
    assert results[4] == {"errors": {"subject": ["This field may not be blank."]}}
    assert results[5] == {"errors": {"channel": ["This field is required."]}}
    assert results[6] == {"errors": {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}}
    assert results[7] == {"errors": {"to": ["Enter a phone number in E.164 format, e.g. +12025550123."]}}
    assert results[8] == {"errors": {"to": ["Give only one of recipient, to."]}}
    assert Notification.objects.count() == 2


def test_errors_per_item_match_the_single_endpoint(api, no_publish):
    bad = {"to": "bob@example.com", "subject": "s" * 999, "body": "b", "priority": "urgent"}
    single = api.post("/api/v1/notifications/email/", bad, format="json")
    batch = api.post(URL, {"notifications": [{"channel": "email", **bad}]}, format="json")

    assert single.status_code == status.HTTP_400_BAD_REQUEST
    assert batch.json()["results"][0]["errors"] == single.json()["errors"]


@pytest.mark.parametrize("body", [None, [], "text", {"to": 5}])
def test_the_single_endpoint_answers_odd_bodies_as_the_serializer_does(api, body):
    serializer = NotificationInputSerializer(data=body, context={"channel": "email"})
    serializer.is_valid()
    expected = {k: [str(m) for m in v] for k, v in serializer.errors.items()}

    response = api.post("/api/v1/notifications/email/", json.dumps(body), content_type="application/json")

    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json()["errors"] == expected


def test_it_refuses_more_than_1000_items_with_400(api, no_publish):
    response = api.post(URL, {"notifications": [_email(i) for i in range(1001)]}, format="json")

    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json() == {"errors": {"notifications": ["At most 1000 notifications per batch; got 1001."]}}
    assert Notification.objects.count() == 0


@pytest.mark.parametrize("body, message", [
    ({}, "This field is required."),
    ({"notifications": {"channel": "email"}}, 'Expected a list of items but got type "dict".'),
    ({"notifications": []}, "This list may not be empty."),
])
def test_it_refuses_a_malformed_envelope_with_400(api, body, message):
    response = api.post(URL, body, format="json")

    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json() == {"errors": {"notifications": [message]}}


def test_items_on_channels_the_key_may_not_use_are_refused_one_by_one(client, no_publish):
    from apps.apikeys.services import api_key_create

    key = api_key_create(name="email only", scopes=["notifications:write"], allowed_channels=["email"])
    response = client.post(URL, {"notifications": [_email(0), {"channel": "sms", "to": "+12025550123", "body": "x"}]},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key.raw}")

    results = response.json()["results"]
    assert results[0]["status"] == "queued"
    assert results[1] == {"errors": {"channel": ["This API key may not send sms notifications."]}}


def test_a_key_without_the_write_scope_gets_403(client):
    from apps.apikeys.services import api_key_create

    key = api_key_create(name="reader", scopes=["notifications:read"])
    response = client.post(URL, {"notifications": [_email(0)]}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key.raw}")

    assert response.status_code == status.HTTP_403_FORBIDDEN


def test_recipients_of_a_batch_are_loaded_with_one_query(api, no_publish, django_assert_max_num_queries):
    for i in range(20):
        Recipient.objects.create(external_id=f"r{i}", email=f"r{i}@example.com")
    items = [{"channel": "email", "recipient": f"r{i}", "subject": "s", "body": "b"} for i in range(20)]
    items.append({"channel": "email", "recipient": "ghost", "subject": "s", "body": "b"})

    # key lookup + its last_used_at, categories, recipients, savepoint/COPY x2 and commit: not 21 lookups.
    with django_assert_max_num_queries(12):
        response = api.post(URL, {"notifications": items}, format="json")

    results = response.json()["results"]
    assert all(r["status"] == "queued" for r in results[:20])
    assert results[20] == {"errors": {"recipient": ["Unknown recipient 'ghost'."]}}
    assert Notification.objects.filter(recipient__external_id="r7").count() == 1


# --- the lean validator gives exactly what the serializer gives ------------------------------

CASES = [
    ("email", {"to": "a@example.com", "subject": "Hi", "body": "There"}),
    ("email", {"to": "a@example.com", "subject": "Hi", "body": "There", "html": "<p>x</p>", "priority": "high",
               "category": "otp", "metadata": {"k": [1, {"a": None}]}, "group_key": "g", "locale": "fr"}),
    ("email", {"to": "a@example.com", "subject": "Hi", "body": "There", "category": "  marketing  "}),
    ("email", {"to": "a@example.com", "subject": "Hi", "body": "There", "category": "nope"}),
    ("email", {"to": "a@example.com", "subject": "Hi", "body": 12}),
    ("email", {"to": "a@example.com", "subject": True, "body": "b"}),
    ("email", {"to": "a@example.com", "subject": None, "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "x\x00y", "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "\ud800", "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "x\x0by", "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "x\u2028y", "body": ""}),
    ("email", {"to": '"a\x0bb"@example.com', "subject": "x\x85y", "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "héllo ☃", "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "s" * 998, "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "s" * 999, "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "priority": ""}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": "x"}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": {"a": "x" * 17000}}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "ttl_seconds": 60}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "ttl_seconds": "60"}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "expires_at": "2020-01-01T00:00:00+00:00"}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "scheduled_for": "2999-01-01T00:00:00"}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "title": "t"}),
    ("email", {"subject": "s", "body": "b"}),
    ("email", {"to": "a@example.com", "recipient": "r", "subject": "s", "body": "b"}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": {"a": "é" * 1300}}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": {"a": "é" * 3000}}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": {"a": "\x01" * 2700}}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": {"n": 2 ** 70, "t": True, "z": None}}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": {"n": 10 ** 5000}}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": {"f": 1.5, "i": -3}}),
    ("email", {"to": "a@example.com", "subject": "s", "body": "b", "metadata": {}}),
    ("sms", {"to": "+12025550123", "body": "x" * 1601}),
    ("sms", {"to": "+12025550123", "body": "code", "unknown_field": {"ignored": True}}),
    ("push", {"to": "tok", "title": "t", "body": "b", "data": {"a": "1"}}),
    ("push", {"device_tokens": ["a", "b"], "title": "t", "body": "b"}),
    ("push", {"device_tokens": [], "title": "t", "body": "b"}),
    ("in_app", {"to": "x", "title": "t", "body": "b"}),
]


def _outcome(validate):
    try:
        spec = validate()
    except ValidationError as exc:
        return ("errors", exc.detail)
    spec.expires_at = spec.expires_at and "set"  # ttl_seconds is relative to "now"
    return ("spec", spec)


@pytest.mark.parametrize("channel, data", CASES)
def test_lean_validator_gives_what_the_serializer_gives(channel, data):
    def full():
        serializer = NotificationInputSerializer(data=data, context={"channel": channel})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    assert _outcome(lambda: ItemValidator(channel).validate(data)) == _outcome(full)


@pytest.mark.parametrize("count, copy_format", [(3, None), (25, "binary"), (25, "text")])
def test_rows_written_in_bulk_read_back_as_the_orm_writes_them(api, no_publish, monkeypatch, count, copy_format):
    """3 rows: one INSERT statement; 25: COPY, binary, or text when a column type has no binary mapping."""
    import dataclasses

    from django.db import connection

    from apps.notifications import bulk

    if copy_format == "text":
        plan = bulk._init_plan(Notification)
        monkeypatch.setattr(bulk, "_init_plan", lambda model: dataclasses.replace(plan, binary_types=None))
    note = "Olá\t\\ \u2713 \U0001f600"  # JSON text is UTF-8 as it is (fastjson), escaped by COPY's text format
    items = [_email(i, metadata={"order": i, "tags": ["a", None], "note": note}, html="<p>x</p>") for i in range(count)]
    results = api.post(URL, {"notifications": items}, format="json").json()["results"]

    [first] = Notification.objects.filter(id=results[0]["id"])
    assert first.content == {"subject": "Hello 0", "body": "Body", "html": "<p>x</p>"}
    assert first.metadata == {"order": 0, "tags": ["a", None], "note": note}
    assert (first.status, first.priority, first.category, first.attempts, first.last_error) == (
        "queued", "normal", "transactional", 0, "")
    assert first.queued_at == first.created_at and first.sent_at is None and first.recipient_id is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT jsonb_typeof(content), jsonb_typeof(metadata) FROM notifications_notification")
        assert cursor.fetchall() == [("object", "object")]
    events = list(NotificationEvent.objects.filter(notification_id=first.id).values_list("status", "detail", "attempt"))
    assert events == [("queued", "", None)]


@pytest.mark.parametrize("count", [3, 25])
def test_a_batch_encodes_its_json_values_through_fastjson(api, no_publish, monkeypatch, count):
    """content and metadata of every row: by orjson (notifier.fastjson), in the INSERT and in the binary COPY."""
    from notifier import fastjson

    encoded = []
    real = fastjson.dumps
    monkeypatch.setattr(fastjson, "dumps", lambda value: encoded.append(value) or real(value))
    items = [_email(i, metadata={"order": i}) for i in range(count)]
    api.post(URL, {"notifications": items}, format="json")

    assert sorted(v["order"] for v in encoded if "order" in v) == list(range(count))
    assert len(encoded) == 2 * count


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=20), st.one_of(
    st.text(max_size=200), st.integers(min_value=-(2 ** 63) + 1, max_value=2 ** 63 - 1), st.booleans(), st.none()),
    max_size=12))
def test_the_size_bound_of_flat_metadata_is_never_below_its_json_size(value):
    from apps.notifications.intake.items import _flat_json_size_bound

    assert _flat_json_size_bound(value) >= len(json.dumps(value))


def test_a_compiled_row_builder_makes_the_rows_build_instances_makes():
    from django.utils import timezone

    from apps.notifications import bulk
    from notifier.ids import uuid7

    now = timezone.now()
    values = dict(id=uuid7(), channel="sms", to="+12025550123", category="otp", priority="high",
                  content={"body": "b"}, status="queued", queued_at=now, metadata={"k": 1}, created_at=now,
                  updated_at=now)
    _, (expected,) = bulk.build_instances(Notification, [values])
    build = bulk.row_builder(Notification, tuple(values))
    row = build(*values.values())
    assert row == expected
    assert build(*values.values()) is not row  # a new list each time
    [instance] = bulk.instances_from_full_rows(Notification, [row])
    assert (instance.pk, instance.to, instance.attempts, instance.last_error) == (values["id"], values["to"], 0, "")
    with pytest.raises(ValueError):
        bulk.row_builder(Notification, ("id", "no_such_field"))
