"""Channel fallback through the API and the dispatcher's release, on the real database (docs/workflows.md).

Time is moved by handing the release a later ``now``; the real-time run with workers, beat and an SMTP
server is tests/integration/test_workflows.py."""
from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from apps.notifications.delivery import worker
from apps.notifications.models import Category, Notification, Status
from apps.recipients.models import Recipient
from apps.workflows import fallback
from apps.workflows.hooks import workflows_release_due
from apps.workflows.models import FallbackState, FallbackStep

from tests.app.workflow_helpers import locked_by_another_dispatcher, post, project_client

pytestmark = pytest.mark.django_db

EMAIL_AFTER_2 = [{"channel": "email", "after_seconds": 2, "unless": "read"}]


@pytest.fixture
def alice(db):
    return Recipient.objects.create(external_id="alice", email="alice@example.com", phone="+12025550142")




def _in_app(api, steps=EMAIL_AFTER_2, recipient="alice", **extra):
    return post(api, recipient=recipient, title="New message", body="Bob: lunch?", data={"thread": "42"},
                 fallback=steps, **extra)["id"]


def _deliver(*ids):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return worker.deliver_chunk([str(i) for i in ids])


def _release(seconds_later):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return workflows_release_due(now=timezone.now() + timedelta(seconds=seconds_later))["fallback_steps"]


def _fallbacks():
    return list(Notification.objects.filter(metadata__has_key="fallback_of").order_by("id"))


def _step(source, position=1) -> FallbackStep:
    return FallbackStep.objects.get(source_id=source, position=position)


# --- validation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps, errors", [
    ([{"channel": "fax", "after_seconds": 60}], [{"channel": ['"fax" is not a valid choice.']}]),
    ([{"channel": "in_app", "after_seconds": 60}], [{"channel": ['"in_app" is not a valid choice.']}]),
    ([{"channel": "email", "after_seconds": 0}],
     [{"after_seconds": ["Ensure this value is greater than or equal to 1."]}]),
    ([{"channel": "email"}], [{"after_seconds": ["This field is required."]}]),
    ([{"channel": "email", "after_seconds": 60, "unless": "clicked"}], [{"unless": ['"clicked" is not a valid choice.']}]),
])
def test_an_invalid_step_is_a_400_under_fallback(api, alice, steps, errors):
    body = post(api, recipient="alice", title="t", body="b", fallback=steps, expect=400)
    assert body["errors"] == {"fallback": {str(i): e for i, e in enumerate(errors)}}  # by step index
    assert not Notification.objects.exists()


def test_fallback_is_a_list_of_at_most_three_distinct_steps(api, alice):
    assert post(api, recipient="alice", title="t", body="b", fallback=[], expect=400)["errors"]["fallback"]
    four = [{"channel": c, "after_seconds": 60} for c in ("email", "sms", "push", "email")]
    assert "no more than 3" in str(post(api, recipient="alice", title="t", body="b", fallback=four, expect=400))
    twice = [{"channel": "email", "after_seconds": 60}, {"channel": "email", "after_seconds": 120}]
    assert post(api, recipient="alice", title="t", body="b", fallback=twice, expect=400)["errors"] == {
        "fallback": ["Step 2: email is already a step."]}


def test_only_in_app_notifications_take_a_fallback_and_never_with_a_digest(api, alice):
    errors = post(api, "email", recipient="alice", subject="s", body="b", fallback=EMAIL_AFTER_2, expect=400)
    assert errors["errors"] == {"fallback": ["Only in-app notifications take a fallback."]}
    errors = post(api, recipient="alice", title="t", body="b", fallback=EMAIL_AFTER_2,
                   digest={"key": "k", "window_seconds": 5}, expect=400)
    assert errors["errors"] == {"fallback": ["A fallback cannot be combined with a digest."]}


def test_a_step_needs_the_recipients_address_for_its_channel(api):
    Recipient.objects.create(external_id="nobody")
    steps = [{"channel": "email", "after_seconds": 60}, {"channel": "sms", "after_seconds": 120}]
    errors = post(api, recipient="nobody", title="t", body="b", fallback=steps, expect=400)["errors"]
    assert errors == {"fallback": ["Step 1: this recipient has no email address.",
                                   "Step 2: this recipient has no phone number."]}


def test_batch_items_get_their_own_fallback_errors(api, alice):
    response = api.post("/api/v1/notifications/batch/", {"notifications": [
        {"channel": "in_app", "recipient": "alice", "title": "t", "body": "b", "fallback": EMAIL_AFTER_2},
        {"channel": "sms", "recipient": "alice", "body": "b", "fallback": EMAIL_AFTER_2},
    ]}, format="json")
    ok, bad = response.json()["results"]
    assert ok["status"] == "queued"
    assert bad == {"errors": {"fallback": ["Only in-app notifications take a fallback."]}}
    assert FallbackStep.objects.get().source_id.hex == ok["id"].replace("-", "")


# --- holding and release -------------------------------------------------------------------------------

def test_steps_are_held_in_postgresql_and_shown_on_the_status_api(api, alice):
    steps = [{"channel": "email", "after_seconds": 60}, {"channel": "sms", "after_seconds": 120}]
    source = _in_app(api, steps)
    held = FallbackStep.objects.filter(source_id=source).order_by("position")
    assert [(s.channel, s.state, s.unless) for s in held] == [("email", "pending", "read"), ("sms", "pending", "read")]
    workflow = api.get(f"/api/v1/notifications/{source}/").json()["workflow"]
    assert [(s["channel"], s["after_seconds"], s["state"], s["notification"]) for s in workflow["fallback"]] == [
        ("email", 60, "pending", None), ("sms", 120, "pending", None)]


def test_an_unread_in_app_notification_is_sent_by_email_at_the_end_of_its_window(api, alice):
    source = _in_app(api)
    assert _deliver(source) == {"sent": 1}
    assert _release(0) == 0  # not yet
    assert _fallbacks() == []

    assert _release(5) == 1
    [email] = _fallbacks()
    assert (email.channel, email.recipient_id, email.status) == ("email", alice.id, Status.QUEUED)
    assert email.content == {"subject": "New message", "body": "Bob: lunch?"}
    assert email.metadata == {"fallback_of": source, "fallback_step": 1}
    step = _step(source)
    assert (step.state, step.notification_id, step.detail) == (FallbackState.SENT, email.id, "unread")
    assert _release(5) == 0  # once
    workflow = api.get(f"/api/v1/notifications/{source}/").json()["workflow"]
    assert workflow["fallback"][0]["notification"] == str(email.id)


def test_a_read_in_app_notification_is_not_sent_by_email(api, alice):
    source = _in_app(api)
    _deliver(source)
    assert api.post(f"/api/v1/recipients/alice/inbox/{source}/read/").status_code == 200
    assert _release(5) == 1
    assert _fallbacks() == []
    step = _step(source)
    assert step.state == FallbackState.SKIPPED and step.detail.startswith("read at ")


def test_the_window_counts_from_when_it_reached_the_inbox(api, alice):
    source = _in_app(api)
    assert _release(5) == 0  # not in the inbox yet: the step waits
    assert _step(source).state == FallbackState.PENDING
    _deliver(source)
    Notification.objects.filter(pk=source).update(sent_at=timezone.now() + timedelta(seconds=4))
    assert _release(5) == 0  # sent "4 s from now": its window ends at 6 s
    assert _release(7) == 1
    assert len(_fallbacks()) == 1


def test_an_in_app_notification_that_never_reached_the_inbox_falls_back_at_once(api, alice):
    from apps.recipients.models import Preference

    Preference.objects.create(recipient=alice, category=Category.objects.get(slug="transactional"), channel="in_app", enabled=False)
    source = post(api, recipient="alice", title="t", body="b", fallback=EMAIL_AFTER_2)
    assert source["status"] == "suppressed"
    assert _release(5) == 1
    [email] = _fallbacks()
    assert _step(source["id"]).detail == "the in-app notification was suppressed"


def test_each_step_in_turn_until_read(api, alice):
    steps = [{"channel": "email", "after_seconds": 2}, {"channel": "sms", "after_seconds": 4}]
    source = _in_app(api, steps)
    _deliver(source)
    assert _release(3) == 1
    assert [n.channel for n in _fallbacks()] == ["email"]
    api.post(f"/api/v1/recipients/alice/inbox/{source}/read/")
    assert _release(5) == 1
    assert [n.channel for n in _fallbacks()] == ["email"]
    assert _step(source, 2).state == FallbackState.SKIPPED


def test_a_fallback_notification_passes_the_recipients_preferences(api, alice):
    from apps.recipients.models import Preference

    Preference.objects.create(recipient=alice, category=Category.objects.get(slug="transactional"), channel="email", enabled=False)
    source = _in_app(api)
    _deliver(source)
    _release(5)
    [email] = _fallbacks()
    assert email.status == Status.SUPPRESSED


# --- cancel --------------------------------------------------------------------------------------------

def test_cancelling_the_in_app_notification_cancels_its_steps(api, alice):
    source = _in_app(api)
    assert api.post(f"/api/v1/notifications/{source}/cancel/").json()["status"] == "cancelled"
    assert _release(5) == 1
    assert _fallbacks() == []
    assert _step(source).state == FallbackState.CANCELLED


def test_the_pending_steps_of_a_sent_notification_can_be_cancelled(api, alice):
    source = _in_app(api)
    _deliver(source)
    response = api.post(f"/api/v1/notifications/{source}/fallback/cancel/")
    assert response.status_code == 200 and response.json() == {"cancelled": 1}
    assert _release(5) == 0
    assert _fallbacks() == []
    assert api.post(f"/api/v1/notifications/{source}/fallback/cancel/").json() == {"cancelled": 0}


# --- owner scoping -------------------------------------------------------------------------------------



def test_a_fallback_belongs_to_the_in_app_notifications_project(db):
    a, b = project_client("project-a"), project_client("project-b")
    for client in (a, b):
        client.put("/api/v1/recipients/alice/", {"email": "alice@example.com"}, format="json")
    mine = _in_app(a)
    assert b.post(f"/api/v1/notifications/{mine}/fallback/cancel/").status_code == 404
    _deliver(mine)
    _release(5)
    [email] = _fallbacks()
    assert email.project.slug == "project-a"
    assert email.recipient.project.slug == "project-a"
    assert email.api_key.project.slug == "project-a"
    assert b.get(f"/api/v1/notifications/{email.id}/").status_code == 404


# --- concurrency ---------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_step_another_dispatcher_holds_is_skipped_and_sent_once(api, alice):
    source = _in_app(api)
    Notification.objects.filter(pk=source).update(status=Status.FAILED)  # decided without the inbox
    with locked_by_another_dispatcher(FallbackStep):
        assert fallback.release_due(now=timezone.now() + timedelta(seconds=5)) == 0
    assert fallback.release_due(now=timezone.now() + timedelta(seconds=5)) == 1
    assert fallback.release_due(now=timezone.now() + timedelta(seconds=5)) == 0
    assert len(_fallbacks()) == 1
