"""Ownership: every notification, recipient, webhook endpoint, group and recurring send belongs to the
project of the key that made it; keys of another project do not find it (404, never 403), and a key's
allowed channels bound everything it reads or changes, not only what it creates."""
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import TestCase
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework import status
from rest_framework.test import APIClient

from apps.apikeys.models import ApiKey, Project
from apps.apikeys.services import api_key_create
from apps.notifications.models import Notification
from apps.recipients.models import Device, Recipient
from apps.webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

EMAIL = {"to": "ada@example.com", "subject": "Hello", "body": "Hi"}


def _client(issued) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    return client


def _key(project: str, **kwargs):
    return api_key_create(name=f"{project} key", project=project, **kwargs)


@pytest.fixture
def a():
    """A key of project A with every scope."""
    return _client(_key("project-a"))


@pytest.fixture
def b():
    """A key of project B with every scope."""
    return _client(_key("project-b"))


def _send(client, channel="email", body=None, **extra):
    response = client.post(f"/api/v1/notifications/{channel}/", {**(body or EMAIL), **extra}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    return response.json()["id"]


def _later() -> str:
    return (timezone.now() + timedelta(hours=1)).isoformat()


# --- projects and keys ----------------------------------------------------------------------------

def test_a_key_made_without_a_project_belongs_to_the_default_project():
    issued = api_key_create(name="plain")
    assert issued.api_key.project.slug == "default"


def test_create_api_key_puts_the_key_in_the_named_project_and_makes_the_project_once(capsys):
    call_command("create_api_key", "billing", "--project", "billing-eu")
    call_command("create_api_key", "billing 2", "--project", "billing-eu")
    assert Project.objects.filter(slug="billing-eu").count() == 1
    assert set(ApiKey.objects.filter(project__slug="billing-eu").values_list("name", flat=True)) == \
        {"billing", "billing 2"}
    assert "project billing-eu" in capsys.readouterr().err


def test_create_api_key_refuses_a_project_slug_that_is_not_a_slug():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_key", "x", "--project", "not a slug!")
    assert not ApiKey.objects.exists()


def test_a_notification_belongs_to_the_project_of_the_key_that_sent_it(a):
    notification_id = _send(a)
    assert Notification.objects.get(pk=notification_id).project.slug == "project-a"


def test_batch_items_belong_to_the_project_of_the_key_that_sent_them(a):
    response = a.post("/api/v1/notifications/batch/", {"notifications": [
        {"channel": "email", **EMAIL}, {"channel": "sms", "to": "+12025550123", "body": "code"}]}, format="json")
    ids = [r["id"] for r in response.json()["results"]]
    assert set(Notification.objects.filter(pk__in=ids).values_list("project__slug", flat=True)) == {"project-a"}


# --- notifications --------------------------------------------------------------------------------

def test_a_read_key_of_another_project_gets_404_for_a_notification_and_does_not_list_it(a):
    notification_id = _send(a)
    reader_b = _client(_key("project-b", scopes=["notifications:read"]))

    response = reader_b.get(f"/api/v1/notifications/{notification_id}/")
    assert response.status_code == status.HTTP_404_NOT_FOUND
    assert response.json() == {"errors": {"detail": ["Not found."]}, "detail": "Not found."}  # as a missing id
    assert reader_b.get("/api/v1/notifications/").json()["results"] == []
    assert [n["id"] for n in a.get("/api/v1/notifications/").json()["results"]] == [notification_id]
    assert a.get(f"/api/v1/notifications/{notification_id}/").status_code == status.HTTP_200_OK


def test_a_write_key_of_another_project_cannot_cancel_or_reschedule_a_notification(a):
    notification_id = _send(a, scheduled_for=_later())
    writer_b = _client(_key("project-b", scopes=["notifications:write"]))

    assert writer_b.post(f"/api/v1/notifications/{notification_id}/cancel/").status_code == status.HTTP_404_NOT_FOUND
    response = writer_b.patch(f"/api/v1/notifications/{notification_id}/", {"scheduled_for": _later()},
                              format="json")
    assert response.status_code == status.HTTP_404_NOT_FOUND
    notification = Notification.objects.get(pk=notification_id)
    assert notification.status == "scheduled"
    assert list(notification.events.values_list("status", flat=True)) == ["scheduled"]  # no event written either
    assert a.post(f"/api/v1/notifications/{notification_id}/cancel/").json()["status"] == "cancelled"


def test_cancelling_a_group_key_cancels_only_the_own_projects_notifications_of_that_group(a, b):
    a_ids = [_send(a, group_key="newsletter-7", scheduled_for=_later()) for _ in range(3)]
    b_id = _send(b, group_key="newsletter-7", scheduled_for=_later())

    response = b.post("/api/v1/notifications/cancel/", {"group_key": "newsletter-7"}, format="json")
    assert response.json() == {"group_key": "newsletter-7", "cancelled": 1}
    assert Notification.objects.get(pk=b_id).status == "cancelled"
    assert set(Notification.objects.filter(pk__in=a_ids).values_list("status", flat=True)) == {"scheduled"}
    assert b.post("/api/v1/notifications/cancel/", {"group_key": "newsletter-7"},
                  format="json").json()["cancelled"] == 0


def test_an_idempotent_replay_is_answered_only_to_the_key_that_made_it(a, b):
    first = a.post("/api/v1/notifications/email/", EMAIL, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    again_by_b = b.post("/api/v1/notifications/email/", EMAIL, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == again_by_b.status_code == status.HTTP_202_ACCEPTED
    assert first.json()["id"] != again_by_b.json()["id"]
    assert Notification.objects.get(pk=again_by_b.json()["id"]).project.slug == "project-b"


# --- allowed channels -----------------------------------------------------------------------------

def test_a_key_restricted_to_sms_cannot_read_list_cancel_or_reschedule_an_email_notification(a):
    project_a = Project.objects.get(slug="project-a")
    email_id = _send(a, scheduled_for=_later(), group_key="g")
    sms_id = _send(a, "sms", {"to": "+12025550123", "body": "code"}, scheduled_for=_later(), group_key="g")
    sms_only = _client(api_key_create(name="sms", project=project_a, allowed_channels=["sms"]))

    assert sms_only.get(f"/api/v1/notifications/{email_id}/").status_code == status.HTTP_404_NOT_FOUND
    assert sms_only.get(f"/api/v1/notifications/{sms_id}/").status_code == status.HTTP_200_OK
    assert [n["id"] for n in sms_only.get("/api/v1/notifications/").json()["results"]] == [sms_id]
    assert sms_only.get("/api/v1/notifications/?channel=email").json()["results"] == []
    assert sms_only.post(f"/api/v1/notifications/{email_id}/cancel/").status_code == status.HTTP_404_NOT_FOUND
    assert sms_only.patch(f"/api/v1/notifications/{email_id}/", {"scheduled_for": _later()},
                          format="json").status_code == status.HTTP_404_NOT_FOUND
    assert sms_only.post("/api/v1/notifications/cancel/", {"group_key": "g"}, format="json").json()["cancelled"] == 1
    assert Notification.objects.get(pk=email_id).status == "scheduled"
    assert Notification.objects.get(pk=sms_id).status == "cancelled"


def test_a_key_restricted_to_sms_cannot_use_the_in_app_inbox(a):
    a.put("/api/v1/recipients/user-42/", {"email": "u@example.com"}, format="json")
    sms_only = _client(api_key_create(name="sms", project=Project.objects.get(slug="project-a"),
                                      allowed_channels=["sms"]))
    assert sms_only.get("/api/v1/recipients/user-42/inbox/").status_code == status.HTTP_403_FORBIDDEN
    assert sms_only.post("/api/v1/recipients/user-42/token/", {}, format="json").status_code == \
        status.HTTP_403_FORBIDDEN


# --- recipients -----------------------------------------------------------------------------------

def test_two_projects_each_have_their_own_recipient_with_the_same_external_id(a, b):
    assert a.put("/api/v1/recipients/user-42/", {"email": "a42@example.com"}, format="json").status_code == 201
    assert b.put("/api/v1/recipients/user-42/", {"email": "b42@example.com"}, format="json").status_code == 201

    assert a.get("/api/v1/recipients/user-42/").json()["email"] == "a42@example.com"
    assert b.get("/api/v1/recipients/user-42/").json()["email"] == "b42@example.com"
    a_id = _send(a, body={"recipient": "user-42", "subject": "s", "body": "b"})
    b_id = _send(b, body={"recipient": "user-42", "subject": "s", "body": "b"})
    assert Notification.objects.get(pk=a_id).recipient.email == "a42@example.com"
    assert Notification.objects.get(pk=b_id).recipient.email == "b42@example.com"
    response = b.post("/api/v1/notifications/batch/", {"notifications": [
        {"channel": "email", "recipient": "user-42", "subject": "s", "body": "b"}]}, format="json")
    [result] = response.json()["results"]
    assert Notification.objects.get(pk=result["id"]).recipient.email == "b42@example.com"


def test_a_recipient_of_another_project_is_unknown_to_every_create_path(a, b):
    a.put("/api/v1/recipients/only-in-a/", {"email": "a@example.com"}, format="json")
    body = {"recipient": "only-in-a", "subject": "s", "body": "b"}

    single = b.post("/api/v1/notifications/email/", body, format="json")
    assert single.status_code == status.HTTP_400_BAD_REQUEST
    assert single.json()["errors"]["recipient"] == ["Unknown recipient 'only-in-a'."]
    batch = b.post("/api/v1/notifications/batch/", {"notifications": [{"channel": "email", **body}]}, format="json")
    assert batch.json()["results"][0]["errors"]["recipient"] == ["Unknown recipient 'only-in-a'."]
    idempotent = b.post("/api/v1/notifications/email/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert idempotent.status_code == status.HTTP_400_BAD_REQUEST
    assert not Notification.objects.filter(project__slug="project-b").exists()


def test_another_projects_recipient_devices_preferences_and_inbox_are_not_found(a, b):
    a.put("/api/v1/recipients/user-42/", {"email": "a42@example.com"}, format="json")
    device = a.post("/api/v1/recipients/user-42/devices/", {"platform": "android", "token": "tok-1"},
                    format="json").json()
    for path in ("/api/v1/recipients/user-42/", "/api/v1/recipients/user-42/devices/",
                 f"/api/v1/recipients/user-42/devices/{device['id']}/", "/api/v1/recipients/user-42/preferences/",
                 "/api/v1/recipients/user-42/inbox/"):
        assert b.get(path).status_code == status.HTTP_404_NOT_FOUND, path
    assert b.delete(f"/api/v1/recipients/user-42/devices/{device['id']}/").status_code == status.HTTP_404_NOT_FOUND
    assert b.put("/api/v1/recipients/user-42/preferences/", {"channels": {"email": False}},
                 format="json").status_code == status.HTTP_404_NOT_FOUND
    assert b.post("/api/v1/recipients/user-42/devices/", {"platform": "android", "token": "tok-2"},
                  format="json").status_code == status.HTTP_404_NOT_FOUND
    assert b.post("/api/v1/recipients/user-42/inbox/read-all/").status_code == status.HTTP_404_NOT_FOUND
    assert b.post("/api/v1/recipients/user-42/token/", {}, format="json").status_code == status.HTTP_404_NOT_FOUND
    assert b.delete("/api/v1/recipients/user-42/").status_code == status.HTTP_404_NOT_FOUND

    recipient = Recipient.objects.get(project__slug="project-a", external_id="user-42")
    assert recipient.email == "a42@example.com"
    assert a.get("/api/v1/recipients/user-42/preferences/").json()["channels"]["email"] is True
    assert list(Device.objects.filter(recipient=recipient).values_list("token", flat=True)) == ["tok-1"]


def test_a_put_by_another_project_makes_its_own_recipient_and_leaves_the_first_untouched(a, b):
    a.put("/api/v1/recipients/user-42/", {"email": "a42@example.com", "name": "Ada"}, format="json")
    response = b.put("/api/v1/recipients/user-42/", {"email": "b42@example.com"}, format="json")
    assert response.status_code == status.HTTP_201_CREATED
    a_row = Recipient.objects.get(project__slug="project-a", external_id="user-42")
    assert (a_row.email, a_row.name) == ("a42@example.com", "Ada")


def test_a_device_token_registered_in_another_project_stays_with_the_first_projects_recipient(a, b):
    a.put("/api/v1/recipients/user-1/", {}, format="json")
    b.put("/api/v1/recipients/user-9/", {}, format="json")
    a.post("/api/v1/recipients/user-1/devices/", {"platform": "ios", "token": "shared-token"}, format="json")
    b.post("/api/v1/recipients/user-9/devices/", {"platform": "ios", "token": "shared-token"}, format="json")
    assert Device.objects.filter(token="shared-token").count() == 2


def test_a_recipient_token_opens_only_the_inbox_of_the_recipient_it_was_minted_for(a, b):
    a.put("/api/v1/recipients/user-42/", {}, format="json")
    b.put("/api/v1/recipients/user-42/", {}, format="json")
    a_id = _send(a, "in_app", {"recipient": "user-42", "title": "for A", "body": "b"})
    from apps.notifications.delivery.worker import deliver_chunk

    with TestCase.captureOnCommitCallbacks(execute=True):  # the result hooks run after the commit
        deliver_chunk([a_id])
    token_b = b.post("/api/v1/recipients/user-42/token/", {}, format="json").json()["token"]
    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Bearer {token_b}")
    assert with_token.get("/api/v1/recipients/user-42/inbox/").json()["results"] == []
    assert with_token.post(f"/api/v1/recipients/user-42/inbox/{a_id}/read/").status_code == \
        status.HTTP_404_NOT_FOUND
    assert [i["id"] for i in a.get("/api/v1/recipients/user-42/inbox/").json()["results"]] == [a_id]


# --- write-only keys ------------------------------------------------------------------------------

def test_a_write_only_key_cannot_register_a_webhook_or_mint_an_inbox_token(a):
    a.put("/api/v1/recipients/user-42/", {}, format="json")
    write_only = _client(api_key_create(name="w", project=Project.objects.get(slug="project-a"),
                                        scopes=["notifications:write", "recipients:write"]))

    response = write_only.post("/api/v1/webhooks/endpoints/", {"url": "http://127.0.0.1:9/hook",
                                                               "events": ["notification.sent"]}, format="json")
    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert write_only.post("/api/v1/recipients/user-42/token/", {}, format="json").status_code == \
        status.HTTP_403_FORBIDDEN
    assert not WebhookEndpoint.objects.exists()


# --- webhook endpoints ----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _local_webhooks(settings):
    settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE = True  # endpoints on 127.0.0.1 (never called here)


def _register(client, **body):
    response = client.post("/api/v1/webhooks/endpoints/", {"url": "http://127.0.0.1:9/hook",
                                                           "events": ["notification.sent"], **body}, format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content
    return response.json()


def test_another_projects_webhook_endpoints_are_not_found_listed_deleted_or_enabled(a, b):
    endpoint = _register(a)
    path = f"/api/v1/webhooks/endpoints/{endpoint['id']}/"

    assert b.get(path).status_code == status.HTTP_404_NOT_FOUND
    assert b.get("/api/v1/webhooks/endpoints/").json()["results"] == []
    assert b.post(f"{path}enable/").status_code == status.HTTP_404_NOT_FOUND
    assert b.delete(path).status_code == status.HTTP_404_NOT_FOUND
    assert WebhookEndpoint.objects.filter(pk=endpoint["id"]).exists()
    assert [e["id"] for e in a.get("/api/v1/webhooks/endpoints/").json()["results"]] == [endpoint["id"]]
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).project.slug == "project-a"


def test_an_endpoint_registered_by_a_channel_restricted_key_hears_of_those_channels_only(a):
    from apps.webhooks import selectors

    project_a = Project.objects.get(slug="project-a")
    sms_only = _client(api_key_create(name="sms", project=project_a, allowed_channels=["sms"]))
    sms_endpoint = _register(sms_only)
    all_endpoint = _register(a)
    selectors.clear_cache()
    table = selectors.subscriptions()

    assert sorted(selectors.subscribed_endpoints(table, "notification.sent", project_id=project_a.pk,
                                                 channel="sms")) == sorted([sms_endpoint["id"], all_endpoint["id"]])
    assert selectors.subscribed_endpoints(table, "notification.sent", project_id=project_a.pk,
                                          channel="email") == [all_endpoint["id"]]
    # The restricted key sees and changes only the endpoint that hears of nothing else.
    assert [e["id"] for e in sms_only.get("/api/v1/webhooks/endpoints/").json()["results"]] == [sms_endpoint["id"]]
    assert sms_only.delete(f"/api/v1/webhooks/endpoints/{all_endpoint['id']}/").status_code == \
        status.HTTP_404_NOT_FOUND


def test_a_delivery_result_makes_webhook_deliveries_for_its_own_projects_endpoints_only(a, b, settings):
    from apps.notifications.delivery.worker import deliver_chunk
    from apps.webhooks import selectors

    a_endpoint, b_endpoint = _register(a), _register(b)
    selectors.clear_cache()
    a.put("/api/v1/recipients/user-1/", {}, format="json")
    a_id = _send(a, "in_app", {"recipient": "user-1", "title": "t", "body": "b"})

    with TestCase.captureOnCommitCallbacks(execute=True):  # the result hooks run after the commit
        deliver_chunk([a_id])

    hooks = Notification.objects.filter(channel="webhook")
    assert [(h.to, h.project.slug) for h in hooks] == [(a_endpoint["id"], "project-a")]
    assert not hooks.filter(to=b_endpoint["id"]).exists()
    # The delivery is the owning project's notification: visible to A, not to B.
    assert a.get(f"/api/v1/notifications/{hooks[0].pk}/").status_code == status.HTTP_200_OK
    assert b.get(f"/api/v1/notifications/{hooks[0].pk}/").status_code == status.HTTP_404_NOT_FOUND


# --- recurring sends ------------------------------------------------------------------------------

def test_another_projects_recurring_sends_are_not_found_listed_or_deleted(a, b):
    response = a.post("/api/v1/schedules/", {"interval_seconds": 3600, "channel": "email", "to": ["x@example.com"],
                                             "subject": "s", "body": "b"}, format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content
    schedule_id = response.json()["id"]

    assert b.get("/api/v1/schedules/").json()["results"] == []
    assert b.get(f"/api/v1/schedules/{schedule_id}/").status_code == status.HTTP_404_NOT_FOUND
    assert b.delete(f"/api/v1/schedules/{schedule_id}/").status_code == status.HTTP_404_NOT_FOUND
    assert a.get(f"/api/v1/schedules/{schedule_id}/").status_code == status.HTTP_200_OK
    sms_only = _client(api_key_create(name="sms", project=Project.objects.get(slug="project-a"),
                                      allowed_channels=["sms"]))
    assert sms_only.get(f"/api/v1/schedules/{schedule_id}/").status_code == status.HTTP_404_NOT_FOUND


def test_a_recurring_send_names_and_sends_to_its_own_projects_recipients(a, b):
    from apps.schedules.services import recurring_send_run

    a.put("/api/v1/recipients/user-42/", {"email": "a42@example.com"}, format="json")
    body = {"interval_seconds": 3600, "channel": "email", "recipients": ["user-42"], "subject": "s", "body": "b"}
    refused = b.post("/api/v1/schedules/", body, format="json")
    assert refused.status_code == status.HTTP_400_BAD_REQUEST and "recipients" in refused.json()["errors"]

    b.put("/api/v1/recipients/user-42/", {"email": "b42@example.com"}, format="json")
    created = b.post("/api/v1/schedules/", {**body, "name": "b digest"}, format="json").json()
    task = PeriodicTask.objects.get(pk=created["id"])
    assert recurring_send_run(kwargs=json.loads(task.kwargs), periodic_task_name=task.name) == 1
    [notification] = Notification.objects.all()
    assert (notification.project.slug, notification.recipient.email) == ("project-b", "b42@example.com")


# --- frequency caps -------------------------------------------------------------------------------

def test_frequency_cap_slots_of_one_project_are_not_used_up_by_another(a, b):
    from apps.notifications.models import Category

    Category.objects.filter(slug="otp").update(cap_count=1, cap_period_seconds=3600)
    from apps.notifications.categories import clear_cache

    clear_cache()
    body = {"to": "+12025550123", "body": "code", "category": "otp"}
    assert a.post("/api/v1/notifications/sms/", body, format="json").json()["status"] == "queued"
    assert b.post("/api/v1/notifications/sms/", body, format="json").json()["status"] == "queued"
    assert a.post("/api/v1/notifications/sms/", body, format="json").json()["status"] == "suppressed"
