"""The in-app inbox through the API, with delivery run in-process by the real pipeline code."""
from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone
from rest_framework import status
from rest_framework.test import APIClient

from apps.inbox.models import InboxState
from apps.inbox.tokens import recipient_token_issue
from apps.notifications.delivery import worker
from apps.notifications.models import Notification
from apps.recipients.models import Recipient

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(db):
    return Recipient.objects.create(external_id="alice")


@pytest.fixture
def bob(db):
    return Recipient.objects.create(external_id="bob")


def _post_in_app(api, recipient="alice", **extra):
    body = {"recipient": recipient, "title": "Welcome", "body": "Hello there", "data": {"url": "/start"}, **extra}
    response = api.post("/api/v1/notifications/in_app/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()["id"]


def _deliver(*ids):
    # The result hooks (the inbox among them) run after the results' commit: inside the test's
    # transaction, when the callbacks are executed.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return worker.deliver_chunk(list(ids))


def _token_client(recipient, **kwargs):
    token, _ = recipient_token_issue(recipient=recipient, **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_in_app_notification_appears_in_inbox_unread_and_reading_it_delivers_it(api, alice):
    notification_id = _post_in_app(api)
    assert _deliver(notification_id) == {"sent": 1}

    page = api.get("/api/v1/recipients/alice/inbox/").json()
    assert page["unread_count"] == 1
    assert page["next"] is None
    [item] = page["results"]
    assert item["id"] == notification_id
    assert (item["title"], item["body"], item["data"], item["category"]) == (
        "Welcome", "Hello there", {"url": "/start"}, "transactional")
    assert item["read_at"] is None and item["created_at"]
    assert Notification.objects.get(pk=notification_id).status == "sent"

    response = api.post(f"/api/v1/recipients/alice/inbox/{notification_id}/read/")
    assert response.status_code == status.HTTP_200_OK, response.content
    assert response.json()["read_at"] is not None

    assert api.get("/api/v1/recipients/alice/inbox/").json()["unread_count"] == 0
    notification = Notification.objects.get(pk=notification_id)
    assert notification.status == "delivered"
    assert notification.delivered_at is not None
    detail = api.get(f"/api/v1/notifications/{notification_id}/").json()
    assert [e["status"] for e in detail["events"]] == ["queued", "sending", "sent", "delivered"]


def test_reading_twice_adds_no_second_delivered_event(api, alice):
    notification_id = _post_in_app(api)
    _deliver(notification_id)
    api.post(f"/api/v1/recipients/alice/inbox/{notification_id}/read/")
    api.post(f"/api/v1/recipients/alice/inbox/{notification_id}/read/")
    events = api.get(f"/api/v1/notifications/{notification_id}/").json()["events"]
    assert [e["status"] for e in events].count("delivered") == 1


def test_only_sent_in_app_notifications_are_in_the_inbox(api, alice):
    _post_in_app(api)  # still queued: not delivered to the inbox yet
    page = api.get("/api/v1/recipients/alice/inbox/").json()
    assert page == {"results": [], "next": None, "unread_count": 0}


def test_mark_unread_archive_and_filters(api, alice):
    first = _post_in_app(api, title="First", category="marketing")
    second = _post_in_app(api, title="Second")
    _deliver(first, second)

    page = api.get("/api/v1/recipients/alice/inbox/").json()
    assert [i["title"] for i in page["results"]] == ["Second", "First"]  # newest first
    assert page["unread_count"] == 2

    api.post(f"/api/v1/recipients/alice/inbox/{first}/read/")
    assert [i["id"] for i in api.get("/api/v1/recipients/alice/inbox/?unread=true").json()["results"]] == [second]
    assert [i["id"] for i in api.get("/api/v1/recipients/alice/inbox/?unread=false").json()["results"]] == [first]
    assert [i["id"] for i in api.get("/api/v1/recipients/alice/inbox/?category=marketing").json()["results"]] == [first]

    response = api.post(f"/api/v1/recipients/alice/inbox/{first}/unread/")
    assert response.json()["read_at"] is None
    assert api.get("/api/v1/recipients/alice/inbox/").json()["unread_count"] == 2
    assert Notification.objects.get(pk=first).status == "delivered"  # seen once: stays delivered

    response = api.post(f"/api/v1/recipients/alice/inbox/{second}/archive/")
    assert response.json()["archived_at"] is not None
    page = api.get("/api/v1/recipients/alice/inbox/").json()
    assert [i["id"] for i in page["results"]] == [first]
    assert page["unread_count"] == 1  # archived items do not count
    assert [i["id"] for i in api.get("/api/v1/recipients/alice/inbox/?archived=true").json()["results"]] == [second]
    assert len(api.get("/api/v1/recipients/alice/inbox/?archived=all").json()["results"]) == 2
    api.post(f"/api/v1/recipients/alice/inbox/{second}/unarchive/")
    assert api.get("/api/v1/recipients/alice/inbox/").json()["unread_count"] == 2


def test_mark_all_read_delivers_every_unread_item(api, alice):
    ids = [_post_in_app(api, title=f"n{i}") for i in range(3)]
    _deliver(*ids)
    response = api.post("/api/v1/recipients/alice/inbox/read-all/")
    assert response.json() == {"marked": 3, "unread_count": 0}
    assert set(Notification.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"delivered"}


def test_inbox_is_cursor_paginated(api, alice):
    ids = [_post_in_app(api, title=f"n{i}") for i in range(5)]
    _deliver(*ids)
    page = api.get("/api/v1/recipients/alice/inbox/?page_size=2").json()
    seen = [i["id"] for i in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [i["id"] for i in page["results"]]
        assert page["unread_count"] == 5
    assert seen == list(reversed(ids))


def test_inbox_list_is_one_query_per_page_plus_the_count(api, alice, django_assert_max_num_queries):
    ids = [_post_in_app(api, title=f"n{i}") for i in range(10)]
    _deliver(*ids)
    api.get("/api/v1/recipients/alice/inbox/")  # warm the API key cache
    with django_assert_max_num_queries(3):  # recipient, page, unread count
        response = api.get("/api/v1/recipients/alice/inbox/")
    assert len(response.json()["results"]) == 10


def test_bad_filters_and_unknown_items_are_4xx(api, alice, bob):
    other = _post_in_app(api, recipient="bob")
    _deliver(other)
    response = api.get("/api/v1/recipients/alice/inbox/?unread=maybe")
    assert response.status_code == 400
    assert "unread" in response.json()["errors"]
    assert api.get("/api/v1/recipients/nobody/inbox/").status_code == 404
    assert api.post("/api/v1/recipients/alice/inbox/not-a-uuid/read/").status_code == 404
    # bob's item is not in alice's inbox
    assert api.post(f"/api/v1/recipients/alice/inbox/{other}/read/").status_code == 404


# --- recipient tokens -------------------------------------------------------------------

def test_token_endpoint_mints_a_token_that_reads_only_its_own_inbox(api, alice, bob):
    response = api.post("/api/v1/recipients/alice/token/", {}, format="json")
    assert response.status_code == status.HTTP_200_OK, response.content
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")

    notification_id = _post_in_app(api)
    _deliver(notification_id)
    page = client.get("/api/v1/recipients/alice/inbox/")
    assert page.status_code == 200
    assert page.json()["unread_count"] == 1
    assert client.post(f"/api/v1/recipients/alice/inbox/{notification_id}/read/").status_code == 200

    assert client.get("/api/v1/recipients/bob/inbox/").status_code == status.HTTP_403_FORBIDDEN
    assert client.post("/api/v1/recipients/bob/inbox/read-all/").status_code == status.HTTP_403_FORBIDDEN
    # ... and nothing outside the inbox
    assert client.get(f"/api/v1/notifications/{notification_id}/").status_code == status.HTTP_401_UNAUTHORIZED
    assert client.post("/api/v1/recipients/alice/token/", {}, format="json").status_code == 403


def test_expired_or_tampered_token_is_401(alice):
    past = timezone.now() - timedelta(hours=1)
    expired = _token_client(alice, now=past, ttl=60)
    response = expired.get("/api/v1/recipients/alice/inbox/")
    assert response.status_code == status.HTTP_401_UNAUTHORIZED
    assert "expired" in response.json()["errors"]["detail"][0]

    token, _ = recipient_token_issue(recipient=alice)
    header, payload, signature = token.split(".")
    tampered = APIClient()
    tampered.credentials(HTTP_AUTHORIZATION=f"Bearer {header}.{payload}.{signature[:-4]}AAAA")
    assert tampered.get("/api/v1/recipients/alice/inbox/").status_code == status.HTTP_401_UNAUTHORIZED


def test_token_of_a_deleted_and_recreated_recipient_no_longer_opens_the_inbox(alice):
    client = _token_client(alice)
    alice.delete()
    Recipient.objects.create(external_id="alice")
    assert client.get("/api/v1/recipients/alice/inbox/").status_code == status.HTTP_403_FORBIDDEN


def test_token_endpoint_needs_a_read_and_a_write_scope_and_a_known_recipient(alice):
    """A token reads and updates the inbox: minting one takes a read scope as well as a write scope."""
    from apps.apikeys.services import api_key_create

    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(name='r', scopes=['recipients:read']).raw}")
    assert reader.post("/api/v1/recipients/alice/token/", {}, format="json").status_code == 403
    assert reader.get("/api/v1/recipients/alice/inbox/").status_code == 200
    write_only = APIClient()
    write_only.credentials(
        HTTP_AUTHORIZATION=f"Bearer {api_key_create(name='wo', scopes=['recipients:write']).raw}")
    assert write_only.post("/api/v1/recipients/alice/token/", {}, format="json").status_code == 403
    writer = APIClient()
    writer.credentials(HTTP_AUTHORIZATION="Bearer " + api_key_create(
        name='w', scopes=['recipients:read', 'recipients:write']).raw)
    assert writer.post("/api/v1/recipients/alice/token/", {}, format="json").status_code == 200
    assert writer.post("/api/v1/recipients/nobody/token/", {}, format="json").status_code == 404
    response = writer.post("/api/v1/recipients/alice/token/", {"ttl_seconds": "x"}, format="json")
    assert response.status_code == 400 and "ttl_seconds" in response.json()["errors"]
    assert APIClient().get("/api/v1/recipients/alice/inbox/").status_code == 401


def test_in_app_delivery_creates_one_inbox_row_per_notification(api, alice):
    ids = [_post_in_app(api) for _ in range(3)]
    _deliver(*ids)
    _deliver(*ids)  # a redelivered message sends nothing twice
    assert InboxState.objects.filter(recipient=alice).count() == 3
