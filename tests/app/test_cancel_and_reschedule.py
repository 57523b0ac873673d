"""Cancel, group cancel and reschedule through the API, on real PostgreSQL."""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import status
from rest_framework.test import APIClient

from apps.notifications import lifecycle, maintenance, store
from apps.notifications.models import Notification, NotificationEvent, Status

pytestmark = pytest.mark.django_db


def _create(api, **extra):
    body = {"to": "alice@example.com", "subject": "Hi", "body": "Hello", **extra}
    response = api.post("/api/v1/notifications/email/", body, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()["id"]


def _in(seconds: float) -> str:
    return (timezone.now() + timedelta(seconds=seconds)).isoformat()


def _set_status(notification_id, new_status, **fields):
    Notification.objects.filter(pk=notification_id).update(status=new_status, **fields)


def _event_statuses(notification_id):
    return list(NotificationEvent.objects.filter(notification_id=notification_id).values_list("status", flat=True))


def _client(scopes):
    from apps.apikeys.services import api_key_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(name='limited', scopes=scopes).raw}")
    return client


# --- cancel one --------------------------------------------------------------------------------------

def test_it_cancels_a_scheduled_notification(api):
    notification_id = _create(api, scheduled_for=_in(3600))

    response = api.post(f"/api/v1/notifications/{notification_id}/cancel/")

    assert response.status_code == status.HTTP_200_OK, response.content
    body = response.json()
    assert body["id"] == notification_id
    assert body["status"] == "cancelled"
    assert [e["status"] for e in body["events"]] == ["scheduled", "cancelled"]
    row = Notification.objects.get(pk=notification_id)
    assert row.status == Status.CANCELLED
    assert row.next_attempt_at is None  # the dispatcher will never release it


def test_it_cancels_a_queued_notification_and_the_worker_then_skips_it(api):
    notification_id = _create(api)

    response = api.post(f"/api/v1/notifications/{notification_id}/cancel/")

    assert response.status_code == status.HTTP_200_OK
    assert response.json()["status"] == "cancelled"
    assert store.claim([notification_id], timezone.now()) == []
    assert Notification.objects.get(pk=notification_id).status == Status.CANCELLED


def test_it_cancels_a_notification_waiting_for_a_retry(api):
    notification_id = _create(api)
    _set_status(notification_id, Status.QUEUED, next_attempt_at=timezone.now() + timedelta(seconds=60), attempts=1)

    response = api.post(f"/api/v1/notifications/{notification_id}/cancel/")

    assert response.status_code == status.HTTP_200_OK
    assert maintenance.dispatch_due() == 0
    assert Notification.objects.get(pk=notification_id).status == Status.CANCELLED


@pytest.mark.parametrize("current", ["sending", "sent", "delivered", "failed", "suppressed", "cancelled", "expired"])
def test_it_refuses_to_cancel_once_sending_started_or_final(api, current):
    notification_id = _create(api)
    _set_status(notification_id, current)

    response = api.post(f"/api/v1/notifications/{notification_id}/cancel/")

    assert response.status_code == status.HTTP_409_CONFLICT
    assert current in response.json()["errors"]["detail"][0]
    assert Notification.objects.get(pk=notification_id).status == current
    assert "cancelled" not in _event_statuses(notification_id)


def test_cancel_of_an_unknown_or_malformed_id_is_404(api):
    assert api.post("/api/v1/notifications/0190f3c4-0000-7000-8000-000000000000/cancel/").status_code == 404
    assert api.post("/api/v1/notifications/not-an-id/cancel/").status_code == 404


def test_cancel_needs_the_write_scope(api):
    notification_id = _create(api, scheduled_for=_in(3600))
    reader = _client(["notifications:read"])

    assert reader.post(f"/api/v1/notifications/{notification_id}/cancel/").status_code == 403
    assert Notification.objects.get(pk=notification_id).status == Status.SCHEDULED


# --- cancel a group ------------------------------------------------------------------------------------

def test_it_cancels_every_notification_of_a_group_that_has_not_started(api):
    scheduled = _create(api, group_key="campaign-7", scheduled_for=_in(3600))
    queued = _create(api, group_key="campaign-7")
    retrying = _create(api, group_key="campaign-7")
    _set_status(retrying, Status.QUEUED, next_attempt_at=timezone.now() + timedelta(seconds=30))
    sent = _create(api, group_key="campaign-7")
    _set_status(sent, Status.SENT)
    other = _create(api, group_key="campaign-8", scheduled_for=_in(3600))

    response = api.post("/api/v1/notifications/cancel/", {"group_key": "campaign-7"}, format="json")

    assert response.status_code == status.HTTP_200_OK, response.content
    assert response.json() == {"group_key": "campaign-7", "cancelled": 3}
    statuses = dict(Notification.objects.values_list("id", "status"))
    assert {str(k): v for k, v in statuses.items()} == {
        scheduled: "cancelled", queued: "cancelled", retrying: "cancelled", sent: "sent", other: "scheduled",
    }
    assert _event_statuses(scheduled) == ["scheduled", "cancelled"]
    detail = api.get(f"/api/v1/notifications/{queued}/").json()
    assert detail["events"][-1]["status"] == "cancelled"
    assert "campaign-7" in detail["events"][-1]["detail"]


def test_group_cancel_of_an_unknown_group_cancels_nothing(api):
    _create(api, group_key="a", scheduled_for=_in(3600))

    response = api.post("/api/v1/notifications/cancel/", {"group_key": "b"}, format="json")

    assert response.status_code == 200
    assert response.json()["cancelled"] == 0
    assert Notification.objects.get().status == Status.SCHEDULED


@pytest.mark.parametrize("body", [{}, {"group_key": ""}, {"group_key": None}, {"group_key": ["a"]}])
def test_group_cancel_without_a_group_key_is_400(api, body):
    response = api.post("/api/v1/notifications/cancel/", body, format="json")

    assert response.status_code == 400
    assert "group_key" in response.json()["errors"]


def test_group_cancel_needs_the_write_scope(api):
    reader = _client(["notifications:read"])

    assert reader.post("/api/v1/notifications/cancel/", {"group_key": "x"}, format="json").status_code == 403


# --- reschedule -----------------------------------------------------------------------------------------

def test_it_reschedules_a_scheduled_notification(api):
    notification_id = _create(api, scheduled_for=_in(3600))
    new_time = timezone.now() + timedelta(hours=2)

    response = api.patch(f"/api/v1/notifications/{notification_id}/", {"scheduled_for": new_time.isoformat()},
                         format="json")

    assert response.status_code == status.HTTP_200_OK, response.content
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["events"][-1]["status"] == "scheduled"
    assert "rescheduled" in body["events"][-1]["detail"]
    row = Notification.objects.get(pk=notification_id)
    assert row.scheduled_for == new_time
    assert row.next_attempt_at == new_time  # the dispatcher releases it at the new time


def test_rescheduling_to_a_past_time_releases_it_on_the_next_dispatch(api, django_capture_on_commit_callbacks):
    notification_id = _create(api, scheduled_for=_in(3600))

    response = api.patch(f"/api/v1/notifications/{notification_id}/",
                         {"scheduled_for": _in(-5)}, format="json")
    assert response.status_code == 200
    from unittest import mock

    with mock.patch("apps.notifications.outbox.publish") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            assert maintenance.dispatch_due() == 1
    assert [str(i) for i, _ in enqueue.call_args.args[0]] == [notification_id]
    assert Notification.objects.get(pk=notification_id).status == Status.QUEUED


@pytest.mark.parametrize("current", ["queued", "sending", "sent", "cancelled", "failed", "expired"])
def test_it_refuses_to_reschedule_one_that_is_not_scheduled(api, current):
    notification_id = _create(api, scheduled_for=_in(3600))
    _set_status(notification_id, current)

    response = api.patch(f"/api/v1/notifications/{notification_id}/", {"scheduled_for": _in(60)}, format="json")

    assert response.status_code == status.HTTP_409_CONFLICT
    assert Notification.objects.get(pk=notification_id).status == current


@pytest.mark.parametrize("body, field", [
    ({}, "scheduled_for"),
    ({"scheduled_for": None}, "scheduled_for"),
    ({"scheduled_for": "tomorrow"}, "scheduled_for"),
    ({"scheduled_for": "2030-01-01T09:00:00"}, "scheduled_for"),  # no offset
    ({"scheduled_for": "2030-01-01T09:00:00+00:00", "body": "changed"}, "body"),
])
def test_reschedule_with_bad_input_is_400(api, body, field):
    notification_id = _create(api, scheduled_for=_in(3600))
    before = Notification.objects.get(pk=notification_id).scheduled_for

    response = api.patch(f"/api/v1/notifications/{notification_id}/", body, format="json")

    assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content
    assert field in response.json()["errors"]
    assert Notification.objects.get(pk=notification_id).scheduled_for == before


def test_reschedule_past_its_expiry_is_400(api):
    notification_id = _create(api, scheduled_for=_in(60), ttl_seconds=600)

    response = api.patch(f"/api/v1/notifications/{notification_id}/", {"scheduled_for": _in(3600)}, format="json")

    assert response.status_code == 400
    assert "expires" in response.json()["errors"]["scheduled_for"][0]


def test_reschedule_of_an_unknown_id_is_404_and_a_json_array_is_400(api):
    assert api.patch("/api/v1/notifications/0190f3c4-0000-7000-8000-000000000000/",
                     {"scheduled_for": _in(60)}, format="json").status_code == 404
    notification_id = _create(api, scheduled_for=_in(3600))
    response = api.patch(f"/api/v1/notifications/{notification_id}/", [1], format="json")
    assert response.status_code == 400
    assert "errors" in response.json()


def test_reschedule_needs_the_write_scope(api):
    notification_id = _create(api, scheduled_for=_in(3600))
    reader = _client(["notifications:read"])

    response = reader.patch(f"/api/v1/notifications/{notification_id}/", {"scheduled_for": _in(60)}, format="json")

    assert response.status_code == 403


# --- expiry ----------------------------------------------------------------------------------------------

def test_the_dispatcher_expires_pending_notifications_past_their_expiry_but_not_claimed_ones(api):
    past = timezone.now() - timedelta(seconds=1)
    backlog = _create(api, ttl_seconds=60)  # queued, its message still in RabbitMQ
    held = _create(api, scheduled_for=_in(3600), expires_at=_in(7200))
    claimed = _create(api, ttl_seconds=60)
    alive = _create(api, ttl_seconds=60)
    Notification.objects.filter(pk__in=[backlog, held, claimed]).update(expires_at=past)
    _set_status(claimed, Status.SENDING)

    assert lifecycle.expire_overdue() == 2

    statuses = {str(k): v for k, v in Notification.objects.values_list("id", "status")}
    assert statuses == {backlog: "expired", held: "expired", claimed: "sending", alive: "queued"}
    assert _event_statuses(backlog) == ["queued", "expired"]
    assert Notification.objects.get(pk=held).next_attempt_at is None
    assert store.claim([backlog], timezone.now()) == []  # the backlog message is then skipped
