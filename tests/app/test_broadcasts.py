"""Broadcasts to a topic's subscribers (apps/broadcasts): the API, validation, owner scoping, expansion
through the batch path (mutes, preferences, quiet hours, suppression, frequency caps), counts, cancel and
scheduled broadcasts, on real PostgreSQL and Redis. Expansion runs here in the test's process (the API's
after-commit publish does not happen inside a test transaction); tests/integration/test_broadcasts.py
runs it on real workers."""
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework import status
from rest_framework.test import APIClient

from apps.apikeys.services import api_key_create
from apps.broadcasts import services
from apps.broadcasts.models import Broadcast
from apps.notifications.categories import clear_cache
from apps.notifications.models import Category, Notification, NotificationEvent
from apps.providers.services import SuppressionInput, suppressions_record
from apps.recipients.models import Recipient
from apps.recipients.services import preferences_update
from apps.topics.models import Topic
from apps.topics.services import topic_subscribe
from notifier import clock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reset_clock_and_caps")]

EMAIL = "/api/v1/notifications/email/"
BATCH = "/api/v1/notifications/batch/"
MAIL = {"subject": "Release 2.0", "body": "It is out."}


def _client(issued) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    return client


def _topic(api_key, key="news", *external_ids, emails=True) -> Topic:
    """A topic of the key's project with recipients ``external_ids`` (address <id>@example.com) subscribed."""
    project_id = api_key.api_key.project_id
    topic = Topic.objects.create(project_id=project_id, key=key)
    Recipient.objects.bulk_create([
        Recipient(project_id=project_id, external_id=e, email=f"{e}@example.com" if emails else "",
                  phone="+12025550123") for e in external_ids], ignore_conflicts=True)
    topic_subscribe(topic=topic, external_ids=list(external_ids))
    return topic


def _broadcast(api, topic="news", path=EMAIL, **extra) -> dict:
    response = api.post(path, {"topic": topic, **MAIL, **extra}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()


def _expand(broadcast_id) -> None:
    services.broadcasts_expand(first=broadcast_id, budget=60)


def _made(broadcast_id) -> dict[str, str]:
    """{recipient external id: status} of the broadcast's notifications."""
    rows = Notification.objects.filter(broadcast_id=broadcast_id).values_list("recipient__external_id", "status")
    made: dict[str, str] = {}
    for external_id, state in rows:
        assert external_id not in made, f"{external_id} got two notifications"
        made[external_id] = state
    return made


# --- accepting ------------------------------------------------------------------------------------------

def test_a_topic_instead_of_a_recipient_answers_202_with_a_broadcast_id_and_creates_nothing_yet(api, api_key):
    _topic(api_key, "news", "u1", "u2")

    response = api.post(EMAIL, {"topic": "news", **MAIL}, format="json")

    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    body = response.json()
    assert body["status"] == "expanding"
    assert body["status_url"] == f"/api/v1/broadcasts/{body['broadcast_id']}/"
    assert response["Location"] == body["status_url"]
    assert (body["channel"], body["topic"], body["category"], body["priority"]) == \
        ("email", "news", "transactional", "normal")
    assert Broadcast.objects.filter(pk=body["broadcast_id"]).exists()
    assert not Notification.objects.exists()  # the expander creates them, not the request


def test_an_unknown_topic_is_a_400_under_topic(api, api_key):
    response = api.post(EMAIL, {"topic": "nope", **MAIL}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json()["errors"]["topic"] == ["Unknown topic 'nope'."]
    assert not Broadcast.objects.exists()


def test_another_projects_topic_is_unknown(api, api_key):
    other = api_key_create(name="other", project="project-b")
    _topic(other, "theirs", "x1")
    response = api.post(EMAIL, {"topic": "theirs", **MAIL}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "topic" in response.json()["errors"]


def test_a_topic_with_a_recipient_or_an_address_is_a_400(api, api_key):
    _topic(api_key, "news", "u1")
    for extra in ({"recipient": "u1"}, {"to": "a@example.com"}):
        response = api.post(EMAIL, {"topic": "news", **MAIL, **extra}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert "Give only one of" in response.json()["errors"]["to"][0]


def test_a_broadcast_with_a_digest_or_a_fallback_is_a_400_and_creates_nothing(api, api_key):
    _topic(api_key, "news", "u1")
    for extra, field in (({"digest": {"key": "comments", "window_seconds": 60}}, "digest"),
                         ({"fallback": [{"channel": "email", "after_seconds": 60, "unless": "read"}]}, "fallback")):
        response = api.post(EMAIL, {"topic": "news", **MAIL, **extra}, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST
        assert response.json()["errors"][field] == ["A broadcast to a topic takes no digest or fallback."]
    assert not Broadcast.objects.exists()


def test_a_broadcast_is_validated_like_any_notification(api, api_key):
    _topic(api_key, "news", "u1")
    response = api.post(EMAIL, {"topic": "news", "subject": "No body"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "body" in response.json()["errors"]
    response = api.post(EMAIL, {"topic": 12, **MAIL}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "topic" in response.json()["errors"]


def test_batch_items_may_name_a_topic(api, api_key):
    _topic(api_key, "news", "u1", "u2")
    response = api.post(BATCH, {"notifications": [
        {"channel": "email", "to": "a@example.com", **MAIL},
        {"channel": "email", "topic": "news", **MAIL},
        {"channel": "email", "topic": "unknown", **MAIL},
    ]}, format="json")

    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    single, broadcast, invalid = response.json()["results"]
    assert single["status"] == "queued" and "id" in single
    assert broadcast["status"] == "expanding"
    assert broadcast["status_url"] == f"/api/v1/broadcasts/{broadcast['broadcast_id']}/"
    assert invalid["errors"]["topic"] == ["Unknown topic 'unknown'."]
    _expand(broadcast["broadcast_id"])
    assert _made(broadcast["broadcast_id"]) == {"u1": "queued", "u2": "queued"}


def test_the_express_lane_leaves_topic_requests_to_django(api_key):
    import asyncio

    from apps.notifications.api.express import ExpressCreate
    from apps.apikeys.services import api_key_check

    api_key_check(api_key.raw)  # cached, as the lane needs
    scope = {"type": "http", "method": "POST", "path": EMAIL, "query_string": b"", "headers": [
        (b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {api_key.raw}".encode())]}
    lane = ExpressCreate()
    assert lane.match(scope) == "email"
    answer = asyncio.run(lane.handle(scope, b'{"topic": "news", "subject": "s", "body": "b"}', "email"))
    assert answer is None
    assert not Notification.objects.exists()


# --- expansion ------------------------------------------------------------------------------------------

def test_expansion_creates_one_notification_per_subscriber_carrying_the_broadcast(api, api_key):
    _topic(api_key, "news", *[f"u{i}" for i in range(7)])
    broadcast = _broadcast(api, metadata={"campaign": "r2"}, group_key="r2")

    _expand(broadcast["broadcast_id"])

    made = _made(broadcast["broadcast_id"])
    assert made == {f"u{i}": "queued" for i in range(7)}
    row = Notification.objects.filter(broadcast_id=broadcast["broadcast_id"]).first()
    assert (row.to, row.content["subject"], row.metadata, row.group_key, row.api_key_id) == \
        ("", "Release 2.0", {"campaign": "r2"}, "r2", api_key.api_key.pk)
    stored = Broadcast.objects.get(pk=broadcast["broadcast_id"])
    assert (stored.status, stored.created, stored.skipped) == ("expanded", 7, 0)
    assert stored.finished_at is not None


@override_settings(NOTIFIER_BROADCAST_PAGE=3)
def test_pages_move_the_cursor_and_a_page_is_never_created_twice(api, api_key):
    _topic(api_key, "news", *[f"u{i}" for i in range(8)])
    broadcast_id = _broadcast(api)["broadcast_id"]

    assert services.expand_page(broadcast_id) == (3, True)
    first_cursor = Broadcast.objects.get(pk=broadcast_id).cursor
    assert services.expand_page(broadcast_id) == (3, True)
    assert Broadcast.objects.get(pk=broadcast_id).cursor > first_cursor
    assert services.expand_page(broadcast_id) == (2, False)
    assert services.expand_page(broadcast_id) == (None, False)  # expanded: a late task creates nothing

    assert len(_made(broadcast_id)) == 8


def test_a_subscriber_who_muted_the_topic_on_the_channel_gets_nothing(api, api_key):
    topic = _topic(api_key, "news", "u1", "u2", "u3")
    preferences_update(recipient=Recipient.objects.get(external_id="u2"), topics={"news": {"email": False}})
    preferences_update(recipient=Recipient.objects.get(external_id="u3"), topics={"news": {"sms": False}})

    broadcast_id = _broadcast(api)["broadcast_id"]
    _expand(broadcast_id)

    assert _made(broadcast_id) == {"u1": "queued", "u3": "queued"}  # u3 muted sms only
    assert topic.pk == Broadcast.objects.get(pk=broadcast_id).topic_id


def test_preferences_suppression_quiet_hours_and_caps_apply_per_subscriber(api, api_key):
    _topic(api_key, "news", "plain", "opted-out", "suppressed", "quiet", "capped")
    preferences_update(recipient=Recipient.objects.get(external_id="opted-out"),
                       categories={"marketing": {"email": False}})
    suppressions_record(items=[SuppressionInput(channel="email", address="suppressed@example.com",
                                                reason="hard_bounce")])
    clock.freeze(datetime(2026, 1, 15, 23, 0, tzinfo=dt_timezone.utc))
    Recipient.objects.filter(external_id="quiet").update(quiet_hours_start="22:00", quiet_hours_end="07:00",
                                                          timezone="UTC")
    Category.objects.filter(slug="marketing").update(cap_count=1, cap_period_seconds=86400)
    clear_cache()
    earlier = api.post(EMAIL, {"recipient": "capped", "category": "marketing", **MAIL}, format="json")
    assert earlier.json()["status"] == "queued"

    broadcast_id = _broadcast(api, category="marketing")["broadcast_id"]
    _expand(broadcast_id)

    assert _made(broadcast_id) == {"plain": "queued", "opted-out": "suppressed", "suppressed": "suppressed",
                                   "quiet": "scheduled", "capped": "suppressed"}
    held = Notification.objects.get(broadcast_id=broadcast_id, recipient__external_id="quiet")
    assert held.next_attempt_at == datetime(2026, 1, 16, 7, 0, tzinfo=dt_timezone.utc)
    capped = Notification.objects.get(broadcast_id=broadcast_id, recipient__external_id="capped")
    assert NotificationEvent.objects.get(notification=capped).detail.startswith("rate_limited")


def test_subscribers_without_an_address_for_the_channel_are_skipped_and_counted(api, api_key):
    _topic(api_key, "news", "u1", "u2")
    Recipient.objects.filter(external_id="u2").update(email="")
    broadcast_id = _broadcast(api)["broadcast_id"]
    _expand(broadcast_id)
    assert _made(broadcast_id) == {"u1": "queued"}
    detail = api.get(f"/api/v1/broadcasts/{broadcast_id}/").json()
    assert (detail["created"], detail["skipped"]) == (1, 1)


def test_a_template_is_rendered_in_each_subscribers_locale(api, api_key):
    from apps.templating.models import Template

    Template.objects.create(slug="release", channel="email", locale="", subject="Release {{ v }}", body="Out: {{ v }}")
    Template.objects.create(slug="release", channel="email", locale="fr", subject="Version {{ v }}",
                            body="Sortie : {{ v }}")
    _topic(api_key, "news", "en-user", "fr-user")
    Recipient.objects.filter(external_id="fr-user").update(locale="fr")

    response = api.post(EMAIL, {"topic": "news", "template": "release", "context": {"v": "2.0"}}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    broadcast_id = response.json()["broadcast_id"]
    _expand(broadcast_id)

    subjects = dict(Notification.objects.filter(broadcast_id=broadcast_id)
                    .values_list("recipient__external_id", "content__subject"))
    assert subjects == {"en-user": "Release 2.0", "fr-user": "Version 2.0"}


def test_a_deleted_topic_ends_the_broadcast(api, api_key):
    topic = _topic(api_key, "news", "u1")
    broadcast_id = _broadcast(api)["broadcast_id"]
    topic.delete()
    _expand(broadcast_id)
    assert Broadcast.objects.get(pk=broadcast_id).status == "expanded"
    assert _made(broadcast_id) == {}


@override_settings(NOTIFIER_BROADCAST_PAGE=2)
def test_an_expander_whose_time_is_up_hands_over_and_broadcasts_take_turns(api, api_key, monkeypatch):
    started = []
    monkeypatch.setattr(services, "start_expander", lambda broadcast_id=None: started.append(broadcast_id))
    _topic(api_key, "news", "u1", "u2", "u3", "u4")
    first, second = _broadcast(api)["broadcast_id"], _broadcast(api)["broadcast_id"]

    assert services.broadcasts_expand(first=first, budget=0) == {"pages": 1, "created": 2}
    assert started == [None]  # a task goes on with the broadcast that waited longest...
    assert services.broadcasts_expand(budget=0) == {"pages": 1, "created": 2}
    assert Notification.objects.filter(broadcast_id=second).count() == 2  # ...the second one

    services.broadcasts_expand(budget=60)
    assert len(_made(first)) == len(_made(second)) == 4


def test_an_expander_ends_at_once_while_another_one_runs(api, api_key):
    from django.db import connections

    _topic(api_key, "news", "u1")
    broadcast_id = _broadcast(api)["broadcast_id"]
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [services.EXPANDER_LOCK])
        assert services.broadcasts_expand(first=broadcast_id) == {"pages": 0, "created": 0}
        assert services.expander_running()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [services.EXPANDER_LOCK])
        assert not services.expander_running()
    finally:
        other.close()
    assert not Notification.objects.exists()


# --- status and counts ----------------------------------------------------------------------------------

def test_the_status_resource_counts_notifications_per_status(api, api_key):
    _topic(api_key, "news", "u1", "u2", "u3")
    broadcast_id = _broadcast(api)["broadcast_id"]
    _expand(broadcast_id)
    first = Notification.objects.filter(broadcast_id=broadcast_id).order_by("id").first()
    Notification.objects.filter(pk=first.pk).update(status="sent")

    response = api.get(f"/api/v1/broadcasts/{broadcast_id}/")

    assert response.status_code == status.HTTP_200_OK
    body = response.json()
    assert (body["id"], body["status"], body["topic"], body["created"]) == (broadcast_id, "expanded", "news", 3)
    assert body["counts"]["queued"] == 2 and body["counts"]["sent"] == 1
    assert set(body["counts"]) >= {"scheduled", "queued", "sending", "sent", "delivered", "failed", "suppressed",
                                   "cancelled", "expired"}


def test_counts_are_reused_for_a_moment_and_then_counted_again(api, api_key):
    _topic(api_key, "news", "u1")
    broadcast_id = _broadcast(api)["broadcast_id"]
    _expand(broadcast_id)
    assert api.get(f"/api/v1/broadcasts/{broadcast_id}/").json()["counts"]["queued"] == 1
    Notification.objects.filter(broadcast_id=broadcast_id).update(status="sent")
    assert api.get(f"/api/v1/broadcasts/{broadcast_id}/").json()["counts"]["queued"] == 1  # cached
    Broadcast.objects.filter(pk=broadcast_id).update(counts_at=timezone.now() - timedelta(seconds=60))
    assert api.get(f"/api/v1/broadcasts/{broadcast_id}/").json()["counts"]["sent"] == 1


def test_another_projects_key_or_a_key_of_other_channels_gets_404(api, api_key):
    _topic(api_key, "news", "u1")
    broadcast_id = _broadcast(api)["broadcast_id"]
    other = _client(api_key_create(name="other", project="project-b"))
    sms_only = _client(api_key_create(name="sms", allowed_channels=["sms"]))
    for client in (other, sms_only):
        assert client.get(f"/api/v1/broadcasts/{broadcast_id}/").status_code == status.HTTP_404_NOT_FOUND
        assert client.post(f"/api/v1/broadcasts/{broadcast_id}/cancel/").status_code == status.HTTP_404_NOT_FOUND
        assert client.get("/api/v1/broadcasts/").json()["results"] == []
    assert Broadcast.objects.get(pk=broadcast_id).status == "expanding"
    assert api.get("/api/v1/broadcasts/not-an-id/").status_code == status.HTTP_404_NOT_FOUND


def test_the_list_shows_the_projects_broadcasts_newest_first(api, api_key):
    _topic(api_key, "news", "u1")
    first, second = _broadcast(api), _broadcast(api)
    results = api.get("/api/v1/broadcasts/").json()["results"]
    assert [r["broadcast_id"] for r in results] == [second["broadcast_id"], first["broadcast_id"]]


def test_reading_needs_the_read_scope_and_cancelling_the_write_scope(api, api_key):
    _topic(api_key, "news", "u1")
    broadcast_id = _broadcast(api)["broadcast_id"]
    writer = _client(api_key_create(name="w", scopes=["notifications:write"]))
    reader = _client(api_key_create(name="r", scopes=["notifications:read"]))
    assert writer.get(f"/api/v1/broadcasts/{broadcast_id}/").status_code == status.HTTP_403_FORBIDDEN
    assert reader.post(f"/api/v1/broadcasts/{broadcast_id}/cancel/").status_code == status.HTTP_403_FORBIDDEN


# --- cancel ---------------------------------------------------------------------------------------------

@override_settings(NOTIFIER_BROADCAST_PAGE=2)
def test_cancel_stops_the_expansion_and_cancels_what_has_not_started_sending(api, api_key):
    _topic(api_key, "news", "u1", "u2", "u3", "u4", "u5")
    broadcast_id = _broadcast(api)["broadcast_id"]
    services.expand_page(broadcast_id)  # u1, u2
    sent = Notification.objects.filter(broadcast_id=broadcast_id).order_by("id").first()
    Notification.objects.filter(pk=sent.pk).update(status="sent")

    response = api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel/")

    assert response.status_code == status.HTTP_200_OK, response.content
    body = response.json()
    assert (body["status"], body["cancelled"]) == ("cancelled", 1)
    assert body["counts"]["sent"] == 1 and body["counts"]["cancelled"] == 1
    assert services.expand_page(broadcast_id) == (None, False)  # no more pages
    assert len(_made(broadcast_id)) == 2
    cancelled = Notification.objects.get(broadcast_id=broadcast_id, status="cancelled")
    assert list(NotificationEvent.objects.filter(notification=cancelled).values_list("status", "detail")) == \
        [("queued", ""), ("cancelled", f"cancelled with broadcast {broadcast_id}")]

    again = api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel/")
    assert again.status_code == status.HTTP_409_CONFLICT


# --- scheduled broadcasts -------------------------------------------------------------------------------

def test_a_scheduled_broadcast_waits_for_its_time_and_then_expands(api, api_key, monkeypatch):
    started = []
    monkeypatch.setattr(services, "start_expander", lambda broadcast_id=None: started.append(broadcast_id))
    _topic(api_key, "news", "u1", "u2")
    later = timezone.now() + timedelta(hours=1)
    body = _broadcast(api, scheduled_for=later.isoformat())
    broadcast_id = body["broadcast_id"]
    assert body["status"] == "scheduled"
    assert body["scheduled_for"] is not None

    assert services.broadcasts_due() == {"started": 0, "kicked": 0}
    assert services.expand_page(broadcast_id) == (None, False)  # nothing before its time

    response = api.patch(f"/api/v1/broadcasts/{broadcast_id}/",
                         {"scheduled_for": (timezone.now() - timedelta(seconds=1)).isoformat()}, format="json")
    assert response.status_code == status.HTTP_200_OK, response.content
    assert services.broadcasts_due() == {"started": 1, "kicked": 1}
    assert started == [None]
    _expand(broadcast_id)
    assert _made(broadcast_id) == {"u1": "queued", "u2": "queued"}
    assert Broadcast.objects.get(pk=broadcast_id).started_at is not None


def test_a_cancelled_scheduled_broadcast_never_creates_anything(api, api_key):
    _topic(api_key, "news", "u1")
    broadcast_id = _broadcast(api, scheduled_for=(timezone.now() + timedelta(hours=1)).isoformat())["broadcast_id"]
    response = api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel/")
    assert response.status_code == status.HTTP_200_OK
    assert response.json()["cancelled"] == 0
    Broadcast.objects.filter(pk=broadcast_id).update(scheduled_for=timezone.now() - timedelta(seconds=1))
    assert services.broadcasts_due()["started"] == 0
    assert not Notification.objects.exists()


def test_only_a_scheduled_broadcast_can_be_rescheduled(api, api_key):
    _topic(api_key, "news", "u1")
    broadcast_id = _broadcast(api)["broadcast_id"]
    response = api.patch(f"/api/v1/broadcasts/{broadcast_id}/",
                         {"scheduled_for": (timezone.now() + timedelta(hours=1)).isoformat()}, format="json")
    assert response.status_code == status.HTTP_409_CONFLICT
    response = api.patch(f"/api/v1/broadcasts/{broadcast_id}/", {"topic": "x"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST


def test_the_openapi_schema_describes_the_broadcast_endpoints(api):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/broadcasts/{key}/" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/broadcasts/{key}/cancel/"]
    detail = schema["components"]["schemas"]["BroadcastDetail"]["properties"]
    assert {"counts", "created", "skipped", "status"} <= set(detail)
    assert "topic" in schema["components"]["schemas"]["NotificationInput"]["properties"]
    accepted = schema["paths"]["/api/v1/notifications/{key}/"]["post"]["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"]["$ref"].endswith("/NotificationOrBroadcastAccepted")
    assert "broadcast_id" in schema["components"]["schemas"]["BroadcastAccepted"]["properties"]
