"""Recurring sends: the /api/v1/schedules/ API, the task's work, the admin form, the beat entries."""
import json

import pytest
from django.conf import settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry
from rest_framework import status
from rest_framework.test import APIClient

from apps.notifications.models import Notification
from apps.recipients.models import Recipient
from apps.schedules.services import TASK_NAME, recurring_send_run

pytestmark = pytest.mark.django_db

EMAIL = {"channel": "email", "subject": "Daily report", "body": "All systems nominal."}


def _post(api, **body):
    return api.post("/api/v1/schedules/", body, format="json")


def _client(**kwargs):
    from apps.apikeys.services import api_key_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(name='limited', **kwargs).raw}")
    return client


def test_it_stores_an_interval_recurring_send_as_a_periodic_task(api, api_key):
    response = _post(api, name="report", interval_seconds=2, to=["ops@example.com", "cto@example.com"], **EMAIL)

    assert response.status_code == status.HTTP_201_CREATED, response.content
    body = response.json()
    assert body["name"] == "report"
    assert body["schedule"] == {"interval_seconds": 2}
    assert body["enabled"] is True
    assert body["send"]["to"] == ["ops@example.com", "cto@example.com"]
    assert "api_key_id" not in body["send"]
    assert response["Location"] == f"/api/v1/schedules/{body['id']}/"
    task = PeriodicTask.objects.get(pk=body["id"])
    assert task.task == TASK_NAME == "notifier.send_recurring"
    assert task.interval.every == 2 and task.interval.period == "seconds"
    assert task.queue == settings.NOTIFIER_RECURRING_QUEUE
    kwargs = json.loads(task.kwargs)
    assert kwargs["api_key_id"] == api_key.api_key.pk
    assert kwargs["subject"] == "Daily report"


def test_it_stores_a_cron_recurring_send_in_the_given_timezone(api):
    Recipient.objects.create(external_id="u1", email="u1@example.com")

    response = _post(api, cron="30 9 * * mon-fri", timezone="Europe/Paris", recipients=["u1"], **EMAIL)

    assert response.status_code == 201, response.content
    assert response.json()["schedule"] == {"cron": "30 9 * * mon-fri", "timezone": "Europe/Paris"}
    crontab = PeriodicTask.objects.get(pk=response.json()["id"]).crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("30", "9", "mon-fri")
    assert str(crontab.timezone) == "Europe/Paris"
    # 09:30 in Paris is 08:30 UTC in winter: the schedule is timezone-aware.
    import datetime as dt
    from zoneinfo import ZoneInfo

    schedule = crontab.schedule
    now = dt.datetime(2026, 1, 5, 8, 0, tzinfo=ZoneInfo("UTC"))  # a Monday, 09:00 in Paris
    schedule.nowfun = lambda: now
    due_in = schedule.remaining_estimate(now)
    assert now + due_in == dt.datetime(2026, 1, 5, 8, 30, tzinfo=ZoneInfo("UTC"))


def test_two_cron_sends_share_one_crontab_row(api):
    assert _post(api, cron="0 8 * * *", to=["a@example.com"], **EMAIL).status_code == 201
    assert _post(api, cron="0 8 * * *", to=["b@example.com"], **EMAIL).status_code == 201
    assert CrontabSchedule.objects.filter(minute="0", hour="8").count() == 1


@pytest.mark.parametrize("body, field", [
    ({"interval_seconds": 60, "to": ["not-an-address"], **EMAIL}, "to"),
    ({"interval_seconds": 60, "recipients": ["nobody"], **EMAIL}, "recipients"),
    ({"interval_seconds": 60, "to": ["a@example.com"], "channel": "email", "body": "no subject"}, "subject"),
    ({"interval_seconds": 60, "to": ["a@example.com"], "template": "missing", "channel": "email"}, "template"),
    ({"interval_seconds": 60, "to": ["+12025550123"], "channel": "sms"}, "body"),
    ({"interval_seconds": 60, **EMAIL}, "recipients"),
    ({"interval_seconds": 60, "to": [], **EMAIL}, "recipients"),
    ({"interval_seconds": 60, "to": ["a@example.com"], "recipients": ["u1"], **EMAIL}, "recipients"),
    ({"interval_seconds": 60, "to": ["a@example.com", "a@example.com"], **EMAIL}, "to"),
    ({"interval_seconds": 60, "to": ["a@example.com"], "colour": "red", **EMAIL}, "colour"),
    ({"interval_seconds": 60, "to": ["a@example.com"], "priority": "urgent", **EMAIL}, "priority"),
    ({"to": ["a@example.com"], **EMAIL}, "interval_seconds"),
    ({"interval_seconds": 60, "cron": "* * * * *", "to": ["a@example.com"], **EMAIL}, "interval_seconds"),
    ({"interval_seconds": 0, "to": ["a@example.com"], **EMAIL}, "interval_seconds"),
    ({"interval_seconds": "soon", "to": ["a@example.com"], **EMAIL}, "interval_seconds"),
    ({"cron": "61 * * * *", "to": ["a@example.com"], **EMAIL}, "cron"),
    ({"cron": "0 9 * *", "to": ["a@example.com"], **EMAIL}, "cron"),
    ({"cron": "0 9 * * *", "timezone": "Mars/Olympus", "to": ["a@example.com"], **EMAIL}, "timezone"),
    ({"interval_seconds": 60, "timezone": "UTC", "to": ["a@example.com"], **EMAIL}, "timezone"),
    ({"interval_seconds": 60, "to": ["a@example.com"], **{**EMAIL, "channel": "pigeon"}}, "channel"),
    ({"interval_seconds": 60, "to": ["a@example.com"], "start_at": "2030-01-02T00:00:00+00:00",
      "end_at": "2030-01-01T00:00:00+00:00", **EMAIL}, "end_at"),
])
def test_it_refuses_a_bad_recurring_send_with_400(api, body, field):
    response = api.post("/api/v1/schedules/", body, format="json")

    assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content
    assert field in response.json()["errors"], response.json()
    assert not PeriodicTask.objects.filter(task=TASK_NAME).exists()


def test_a_bad_address_is_reported_with_its_position(api):
    response = _post(api, interval_seconds=60, to=["ok@example.com", "broken"], **EMAIL)

    assert response.status_code == 400
    assert response.json()["errors"]["to"] == ["Item 1 (broken): Enter a valid email address."]


def test_a_duplicate_name_is_400_and_a_non_object_body_is_400(api):
    assert _post(api, name="same", interval_seconds=60, to=["a@example.com"], **EMAIL).status_code == 201
    response = _post(api, name="same", interval_seconds=60, to=["a@example.com"], **EMAIL)
    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    response = api.post("/api/v1/schedules/", [1, 2], format="json")
    assert response.status_code == 400
    assert "errors" in response.json()


def test_it_lists_reads_and_deletes_recurring_sends_only(api):
    PeriodicTask.objects.create(name="something else", task="notifier.sweep",
                                interval=_post(api, interval_seconds=5, to=["a@example.com"], **EMAIL)
                                and PeriodicTask.objects.get(task=TASK_NAME).interval)
    mine = PeriodicTask.objects.get(task=TASK_NAME)
    other = PeriodicTask.objects.get(name="something else")

    listing = api.get("/api/v1/schedules/")
    assert listing.status_code == 200
    assert [s["id"] for s in listing.json()["results"]] == [mine.pk]
    assert listing.json()["next"] is None
    assert api.get(f"/api/v1/schedules/{mine.pk}/").json()["schedule"] == {"interval_seconds": 5}
    assert api.get(f"/api/v1/schedules/{other.pk}/").status_code == 404
    assert api.delete(f"/api/v1/schedules/{other.pk}/").status_code == 404
    assert api.get("/api/v1/schedules/nope/").status_code == 404

    assert api.delete(f"/api/v1/schedules/{mine.pk}/").status_code == 204
    assert not PeriodicTask.objects.filter(pk=mine.pk).exists()
    assert PeriodicTask.objects.filter(pk=other.pk).exists()
    assert api.delete(f"/api/v1/schedules/{mine.pk}/").status_code == 404


def test_schedules_need_their_scopes_and_channels(api):
    reader = _client(scopes=["notifications:read"])
    sms_only = _client(allowed_channels=["sms"])
    recipients_only = _client(scopes=["recipients:read"])

    assert reader.get("/api/v1/schedules/").status_code == 200
    assert reader.post("/api/v1/schedules/", {"interval_seconds": 5, "to": ["a@example.com"], **EMAIL},
                       format="json").status_code == 403
    assert sms_only.post("/api/v1/schedules/", {"interval_seconds": 5, "to": ["a@example.com"], **EMAIL},
                         format="json").status_code == 403
    assert recipients_only.get("/api/v1/schedules/").status_code == 403
    assert APIClient().get("/api/v1/schedules/").status_code == 401
    created = _post(api, interval_seconds=5, to=["a@example.com"], **EMAIL).json()
    assert reader.delete(f"/api/v1/schedules/{created['id']}/").status_code == 403


# --- one run ---------------------------------------------------------------------------------------------

def test_a_run_creates_one_queued_notification_per_recipient_through_the_normal_path(api, api_key):
    Recipient.objects.create(external_id="u1", email="u1@example.com")
    Recipient.objects.create(external_id="u2", email="u2@example.com")
    created = _post(api, interval_seconds=60, recipients=["u1", "u2"], group_key="daily", ttl_seconds=600,
                    metadata={"kind": "report"}, **EMAIL).json()
    task = PeriodicTask.objects.get(pk=created["id"])

    assert recurring_send_run(kwargs=json.loads(task.kwargs), periodic_task_name=task.name) == 2

    rows = list(Notification.objects.order_by("recipient__external_id"))
    assert [r.recipient.external_id for r in rows] == ["u1", "u2"]
    assert all(r.status == "queued" and r.group_key == "daily" and r.metadata == {"kind": "report"} for r in rows)
    assert all(r.content["subject"] == "Daily report" and r.expires_at is not None for r in rows)
    assert all(r.api_key_id == api_key.api_key.pk for r in rows)
    assert [e.status for e in rows[0].events.all()] == ["queued"]


def test_a_run_skips_recipients_erased_since_and_sends_to_the_rest(api):
    Recipient.objects.create(external_id="u1", email="u1@example.com")
    Recipient.objects.create(external_id="u2", email="u2@example.com")
    created = _post(api, interval_seconds=60, recipients=["u1", "u2"], **EMAIL).json()
    Recipient.objects.filter(external_id="u1").delete()

    kwargs = json.loads(PeriodicTask.objects.get(pk=created["id"]).kwargs)
    assert recurring_send_run(kwargs=kwargs) == 1
    assert Notification.objects.get().recipient.external_id == "u2"


def test_a_run_sends_nothing_once_its_api_key_is_revoked(api, api_key):
    from apps.apikeys.services import api_key_revoke

    created = _post(api, interval_seconds=60, to=["a@example.com"], **EMAIL).json()
    kwargs = json.loads(PeriodicTask.objects.get(pk=created["id"]).kwargs)
    api_key_revoke(prefix=api_key.api_key.prefix)

    assert recurring_send_run(kwargs=kwargs) == 0
    assert not Notification.objects.exists()


def test_a_run_with_broken_kwargs_sends_nothing_and_does_not_raise():
    assert recurring_send_run(kwargs={"channel": "email"}) == 0
    assert recurring_send_run(kwargs={"channel": "email", "to": ["a@example.com"], "subject": "s"}) == 0
    assert not Notification.objects.exists()


# --- admin -----------------------------------------------------------------------------------------------

def _admin_form(kwargs: str, task: str = TASK_NAME):
    from django_celery_beat.models import IntervalSchedule

    from apps.schedules.admin import RecurringSendForm

    interval = IntervalSchedule.objects.create(every=60, period="seconds")
    return RecurringSendForm(data={
        "name": "from the admin", "regtask": task, "task": "", "interval": interval.pk, "args": "[]",
        "kwargs": kwargs, "enabled": "on", "headers": "{}", "description": "",
    })


def test_the_admin_refuses_invalid_recurring_send_kwargs():
    form = _admin_form(json.dumps({"channel": "email", "to": ["broken"], "subject": "s", "body": "b"}))

    assert not form.is_valid()
    assert "Enter a valid email address" in str(form.errors["kwargs"])


def test_the_admin_saves_valid_recurring_send_kwargs_on_the_recurring_queue():
    form = _admin_form(json.dumps({"channel": "email", "to": ["a@example.com"], "subject": "s", "body": "b"}))

    assert form.is_valid(), form.errors
    task = form.save()
    assert task.task == TASK_NAME
    assert task.queue == settings.NOTIFIER_RECURRING_QUEUE
    assert "notifier.send_recurring" in form.fields["kwargs"].help_text


def test_the_admin_leaves_other_tasks_kwargs_alone():
    form = _admin_form(json.dumps({"anything": 1}), task="notifier.sweep")

    assert form.is_valid(), form.errors


def test_the_admin_lists_periodic_tasks_with_the_recurring_send_form(admin_client):
    from django.contrib import admin

    from apps.schedules.admin import RecurringSendAdmin

    assert isinstance(admin.site._registry[PeriodicTask], RecurringSendAdmin)
    assert admin_client.get("/admin/django_celery_beat/periodictask/add/").status_code == 200


# --- beat entries --------------------------------------------------------------------------------------

def test_the_beat_entries_survive_conversion_to_database_schedule_rows():
    """The DatabaseScheduler stores CELERY_BEAT_SCHEDULE as rows: whole seconds, with an expiry."""
    from config.celery_app import app

    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        model_entry = ModelEntry.from_entry(name, app=app, **entry)
        row = PeriodicTask.objects.get(name=name)
        assert row.interval.every >= 1
        assert row.interval.every == entry["schedule"]
        assert row.expire_seconds and row.expire_seconds >= row.interval.every
        assert row.queue == settings.MAINTENANCE_QUEUE  # beat's own jobs never wait behind deliveries
        assert model_entry.options["expires"] == row.expire_seconds


def test_a_recurring_send_made_in_the_admin_belongs_to_the_project_chosen_there(admin_client):
    from apps.apikeys.models import Project
    from apps.schedules.models import RecurringSendOwner
    from tests.app.test_admin import form_data

    shop = Project.objects.create(slug="shop")
    interval = IntervalSchedule.objects.create(every=3600, period=IntervalSchedule.SECONDS)
    data = form_data(admin_client.get("/admin/django_celery_beat/periodictask/add/"))
    data.update({"name": "shop digest", "regtask": TASK_NAME, "task": TASK_NAME, "interval": str(interval.pk),
                 "kwargs": json.dumps({"channel": "sms", "to": ["+12025550123"], "body": "b"}),
                 "notifier_owner-TOTAL_FORMS": "1", "notifier_owner-0-project": str(shop.pk)})
    response = admin_client.post("/admin/django_celery_beat/periodictask/add/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    owner = RecurringSendOwner.objects.get(periodic_task__name="shop digest")
    assert (owner.project, owner.channel) == (shop, "sms")

    data.update({"name": "default digest", "notifier_owner-TOTAL_FORMS": "0"})
    data.pop("notifier_owner-0-project")
    assert admin_client.post("/admin/django_celery_beat/periodictask/add/", data).status_code == 302
    assert RecurringSendOwner.objects.get(periodic_task__name="default digest").project.slug == "default"
