"""Digests through the API and the dispatcher's release, on the real database (docs/workflows.md).

The window's end is reached by handing the release a later ``now``; the real-time run with workers and
beat is tests/integration/test_workflows.py."""
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import TestCase
from django.utils import timezone
from rest_framework import status

from apps.apikeys.services import api_key_create
from apps.notifications.delivery import worker
from apps.notifications.models import Category, Notification, NotificationEvent, Status
from apps.recipients.models import Recipient
from apps.templating.models import Template
from apps.workflows import digests
from apps.workflows.hooks import workflows_release_due
from apps.workflows.models import CategoryDigest, DigestGroup, DigestMember, DigestState
from apps.workflows.validation import clear_cache

from tests.app.workflow_helpers import locked_by_another_dispatcher, post, project_client

pytestmark = pytest.mark.django_db

DIGEST = {"key": "comments", "window_seconds": 2}


@pytest.fixture(autouse=True)
def _fresh_category_digests():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def alice(db):
    return Recipient.objects.create(external_id="alice", email="alice@example.com")




def _comment(api, n, recipient="alice", digest=DIGEST, **extra):
    return post(api, recipient=recipient, title=f"Comment {n}", body=f"text {n}", digest=digest, **extra)["id"]


def _release(seconds_later=5):
    """One dispatcher pass of the workflows as if ``seconds_later`` had passed (its commits' callbacks run)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return workflows_release_due(now=timezone.now() + timedelta(seconds=seconds_later))


def _status(notification_id):
    return Notification.objects.get(pk=notification_id).status


def _digest_messages():
    return list(Notification.objects.filter(metadata__has_key="digest").order_by("id"))


# --- validation ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("digest, field, message", [
    ({"window_seconds": 60}, "key", "This field is required."),
    ({"key": "a b", "window_seconds": 60}, "key", "letters, digits"),
    ({"key": "c", "window_seconds": 0}, "window_seconds", "greater than or equal to 1"),
    ({"key": "c", "window_seconds": 8 * 86400}, "window_seconds", "less than or equal to 604800"),
    ({"key": "c", "window_seconds": "soon"}, "window_seconds", "A valid integer is required."),
    ({"key": "c", "window_seconds": 60, "template": "nope"}, "template", "Unknown template 'nope'"),
])
def test_an_invalid_digest_is_a_400_naming_its_field(api, alice, digest, field, message):
    errors = post(api, recipient="alice", title="t", body="b", digest=digest, expect=400)["errors"]
    assert list(errors) == ["digest"]
    assert message in " ".join(errors["digest"][field])
    assert not Notification.objects.exists()


def test_a_digest_is_a_json_object(api, alice):
    errors = post(api, recipient="alice", title="t", body="b", digest="comments", expect=400)["errors"]
    assert errors["digest"] == {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}


def test_a_digest_cannot_be_scheduled_or_go_to_device_tokens(api, alice):
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    errors = post(api, recipient="alice", title="t", body="b", digest=DIGEST, scheduled_for=later, expect=400)
    assert errors["errors"] == {"digest": ["A digest cannot be combined with scheduled_for."]}
    errors = post(api, "push", device_tokens=["tok-1"], title="t", body="b", digest=DIGEST, expect=400)
    assert errors["errors"] == {"digest": ["A digest needs a 'recipient' or 'to', not device tokens."]}


def test_batch_items_with_an_invalid_digest_get_their_own_errors(api, alice):
    response = api.post("/api/v1/notifications/batch/", {"notifications": [
        {"channel": "in_app", "recipient": "alice", "title": "t", "body": "b", "digest": DIGEST},
        {"channel": "in_app", "recipient": "alice", "title": "t", "body": "b", "digest": {"key": "x"}},
    ]}, format="json")
    assert response.status_code == 202, response.content
    ok, bad = response.json()["results"]
    assert ok["status"] == "scheduled"
    assert bad == {"errors": {"digest": {"window_seconds": ["This field is required."]}}}


# --- holding -------------------------------------------------------------------------------------------

def test_digested_notifications_are_held_scheduled_in_one_group_and_shown_on_the_status_api(api, alice):
    first, second = _comment(api, 1), _comment(api, 2)

    for notification_id in (first, second):
        assert _status(notification_id) == Status.SCHEDULED
        row = Notification.objects.get(pk=notification_id)
        assert row.next_attempt_at is None  # the dispatcher's own release never takes it
        detail = api.get(f"/api/v1/notifications/{notification_id}/").json()
        assert detail["status"] == "scheduled"
        assert detail["events"][0]["detail"] == "held for digest 'comments'"
        assert detail["workflow"]["digest"]["state"] == "held"
        assert detail["workflow"]["digest"]["items"] == 2
        assert detail["workflow"]["digest"]["digest_notification"] is None
    [group] = DigestGroup.objects.all()
    assert group.release_at - group.opened_at == timedelta(seconds=2)
    held = api.get("/api/v1/digests/?recipient=alice").json()["results"]
    assert [(d["key"], d["channel"], d["recipient"], d["items"]) for d in held] == [
        ("comments", "in_app", "alice", [first, second])]


def test_other_keys_channels_and_recipients_get_their_own_digests(api, alice):
    Recipient.objects.create(external_id="bob")
    _comment(api, 1)
    _comment(api, 2, digest={"key": "likes", "window_seconds": 2})
    _comment(api, 3, recipient="bob")
    post(api, "email", to="carol@example.com", subject="s", body="b", digest=DIGEST)
    post(api, "email", recipient="alice", subject="s", body="b", digest=DIGEST)
    assert DigestGroup.objects.count() == 5


def test_a_suppressed_notification_is_not_held(api, alice):
    from apps.providers.models import Suppression

    Suppression.objects.create(channel="email", address="gone@example.com", reason="hard_bounce")
    accepted = post(api, "email", to="gone@example.com", subject="s", body="b", digest=DIGEST)
    assert accepted["status"] == "suppressed"
    assert not DigestMember.objects.exists()


def test_a_category_digest_holds_its_notifications_unless_the_request_says_null(api, alice):
    category = Category.objects.create(slug="comment")
    CategoryDigest.objects.create(category=category, key="comments", window_seconds=600)
    held = post(api, recipient="alice", title="t", body="b", category="comment")
    alone = post(api, recipient="alice", title="t", body="b", category="comment", digest=None)
    other = post(api, recipient="alice", title="t", body="b")
    assert (held["status"], alone["status"], other["status"]) == ("scheduled", "queued", "queued")
    assert DigestGroup.objects.get().window_seconds == 600


# --- release -------------------------------------------------------------------------------------------

def test_nothing_is_released_before_the_window_ends(api, alice):
    first = _comment(api, 1)
    assert _release(seconds_later=0)["digests_released"] == 0
    assert _status(first) == Status.SCHEDULED
    assert _digest_messages() == []


def test_at_the_window_end_one_digest_message_carries_every_item_rendered_from_its_template(api, alice):
    Template.objects.create(slug="comments-digest", channel="in_app", title="{{ count }} new comments",
                            body="{% for item in items %}{{ item.title }}={{ item.body }};{% endfor %}{{ key }}")
    digest = {**DIGEST, "template": "comments-digest"}
    ids = [_comment(api, n, digest=digest) for n in range(1, 4)]

    assert _release()["digests_released"] == 1
    assert _release()["digests_released"] == 0  # released once

    [message] = _digest_messages()
    assert message.channel == "in_app" and message.recipient_id == alice.id
    assert message.content["title"] == "3 new comments"
    assert message.content["body"] == "Comment 1=text 1;Comment 2=text 2;Comment 3=text 3;comments"
    assert message.status == Status.QUEUED and message.template == "comments-digest"
    for notification_id in ids:
        assert _status(notification_id) == Status.SENDING
        events = list(NotificationEvent.objects.filter(notification_id=notification_id).order_by("at", "id"))
        assert events[-1].detail == f"released in digest {message.id} with 3 items"
    detail = api.get(f"/api/v1/notifications/{message.id}/").json()
    assert detail["workflow"] == {"digest_of": {"key": "comments", "items": ids}}
    assert api.get(f"/api/v1/notifications/{ids[0]}/").json()["workflow"]["digest"]["digest_notification"] == \
        str(message.id)


def test_the_built_in_summary_when_no_template_is_named(api, alice):
    post(api, "email", recipient="alice", subject="New comment", body="Nice!", digest=DIGEST)
    post(api, "email", recipient="alice", subject="New like", body="from Bob", digest=DIGEST)
    _release()
    [message] = _digest_messages()
    assert message.content == {"subject": "2 new notifications", "body": "- New comment: Nice!\n- New like: from Bob"}


def test_members_take_the_digest_messages_final_status_with_a_pointer_to_it(api, alice):
    ids = [_comment(api, n) for n in (1, 2)]
    _release()
    [message] = _digest_messages()
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert worker.deliver_chunk([str(message.id)]) == {"sent": 1}
    assert _release()["digests_settled"] == 1

    for notification_id in ids:
        row = Notification.objects.get(pk=notification_id)
        assert (row.status, row.provider, row.provider_message_id) == (Status.SENT, "digest", str(message.id))
        assert row.sent_at is not None
        assert NotificationEvent.objects.filter(notification_id=notification_id).order_by("at", "id") \
            .last().detail == f"sent in digest {message.id}"
    assert DigestGroup.objects.get().state == DigestState.SETTLED
    inbox = api.get("/api/v1/recipients/alice/inbox/").json()["results"]
    assert [item["id"] for item in inbox] == [str(message.id)]  # one entry, not one per comment


def test_a_suppressed_digest_message_suppresses_its_members(api, alice):
    from apps.providers.models import Suppression

    member = post(api, "email", to="soon-gone@example.com", subject="s", body="b", digest=DIGEST)["id"]
    Suppression.objects.create(channel="email", address="soon-gone@example.com", reason="hard_bounce")
    _release()
    [message] = _digest_messages()
    assert message.status == Status.SUPPRESSED
    _release()
    assert _status(member) == Status.SUPPRESSED


def test_a_digest_whose_recipient_was_deleted_fails_its_members(api, alice):
    member = _comment(api, 1)
    DigestGroup.objects.update(recipient_id=None)  # as SET_NULL leaves it when the recipient is deleted
    _release()
    row = Notification.objects.get(pk=member)
    assert row.status == Status.FAILED
    assert "its recipient was deleted" in row.last_error
    assert _digest_messages() == []


# --- cancel --------------------------------------------------------------------------------------------

def test_a_cancelled_item_is_left_out_of_its_digest(api, alice):
    kept, cancelled = _comment(api, 1), _comment(api, 2)
    assert api.post(f"/api/v1/notifications/{cancelled}/cancel/").json()["status"] == "cancelled"
    _release()
    [message] = _digest_messages()
    assert message.content["body"] == "Comment 1: text 1"
    assert message.metadata["digest"] == {"key": "comments", "items": 1}
    assert _status(cancelled) == Status.CANCELLED and _status(kept) == Status.SENDING


def test_a_digest_whose_items_were_all_cancelled_sends_nothing(api, alice):
    only = _comment(api, 1)
    api.post(f"/api/v1/notifications/{only}/cancel/")
    _release()
    assert _digest_messages() == []
    assert DigestGroup.objects.get().state == DigestState.EMPTY


def test_a_released_member_can_no_longer_be_cancelled(api, alice):
    member = _comment(api, 1)
    _release()
    response = api.post(f"/api/v1/notifications/{member}/cancel/")
    assert response.status_code == status.HTTP_409_CONFLICT


# --- owner scoping -------------------------------------------------------------------------------------



def test_projects_never_share_a_digest_or_see_each_others(db):
    a, b = project_client("project-a"), project_client("project-b")
    mine = post(a, "email", to="same@example.com", subject="A", body="a", digest=DIGEST)["id"]
    theirs = post(b, "email", to="same@example.com", subject="B", body="b", digest=DIGEST)["id"]
    assert DigestGroup.objects.count() == 2
    assert [d["items"] for d in a.get("/api/v1/digests/").json()["results"]] == [[mine]]
    assert a.get(f"/api/v1/notifications/{theirs}/").status_code == 404
    assert a.post(f"/api/v1/notifications/{theirs}/cancel/").status_code == 404

    _release()
    messages = {m.project.slug: m for m in (Notification.objects.select_related("project")
                                             .filter(metadata__has_key="digest"))}
    assert messages["project-a"].content["body"] == "- A: a"
    assert messages["project-b"].content["body"] == "- B: b"
    assert messages["project-a"].api_key.project.slug == "project-a"


# --- concurrency ---------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_group_another_dispatcher_holds_is_skipped_and_released_once(api, alice):
    _comment(api, 1)
    with locked_by_another_dispatcher(DigestGroup):
        assert digests.release_due(now=timezone.now() + timedelta(seconds=5)) == 0  # skipped, not waited for
    assert digests.release_due(now=timezone.now() + timedelta(seconds=5)) == 1
    assert digests.release_due(now=timezone.now() + timedelta(seconds=5)) == 0
    assert len(_digest_messages()) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_join_one_open_group(alice, api_key):
    from apps.notifications.intake.items import validate_notification
    from apps.notifications.intake.create import notifications_create

    errors = []

    def create(n):
        try:
            spec = validate_notification(channel="in_app", data={"recipient": "alice", "title": f"t{n}", "body": "b",
                                                                 "digest": DIGEST})
            notifications_create(specs=[spec], api_key=api_key.api_key)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [group] = DigestGroup.objects.all()
    assert group.items == 8 and DigestMember.objects.filter(group=group).count() == 8


# --- OpenAPI -------------------------------------------------------------------------------------------

def test_the_schema_documents_the_request_fields_the_workflow_of_a_notification_and_the_digest_list(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    components = schema["components"]["schemas"]
    request = components["NotificationInput"]["properties"]
    assert "digest" in request
    assert set(components["DigestInput"]["properties"]) == {"key", "window_seconds", "template"}
    assert request["fallback"]["type"] == "array"
    assert "workflow" in components["NotificationDetail"]["properties"]
    assert "workflow" not in components["NotificationListItem"]["properties"]
    assert "/api/v1/digests/" in schema["paths"]
    assert "/api/v1/notifications/{key}/fallback/cancel/" in schema["paths"]


@pytest.mark.django_db(transaction=True)
def test_the_express_lane_and_group_committer_hold_digests_and_store_fallback_steps(alice):
    """The common single create goes by the web process's event loop and the group committer
    (apps/notifications/api/express.py, groupcommit.py): its digest and fallback are kept too."""
    import asyncio
    import json

    from apps.apikeys.services import api_key_check
    from apps.workflows.models import FallbackStep
    from tests.app.test_express_create import Served

    issued = api_key_create(name="express")
    assert api_key_check(issued.raw) is not None
    served = Served()
    requests = [("/api/v1/notifications/in_app/", {"recipient": "alice", "title": f"t{n}", "body": "b",
                                                   "digest": DIGEST}, issued.raw) for n in range(3)]
    requests.append(("/api/v1/notifications/in_app/", {
        "recipient": "alice", "title": "t", "body": "b",
        "fallback": [{"channel": "email", "after_seconds": 60}]}, issued.raw))
    answers = asyncio.run(served.post_many(requests))
    assert served.django_paths == []
    assert [(code, json.loads(body)["status"]) for code, _, body in answers] == [(202, "scheduled")] * 3 + [
        (202, "queued")]
    [group] = DigestGroup.objects.all()
    assert group.items == 3 and DigestMember.objects.count() == 3
    assert FallbackStep.objects.get().source_id.hex == json.loads(answers[3][2])["id"].replace("-", "")


def test_members_of_a_digest_message_cancelled_while_queued_settle_cancelled(api, alice):
    member = _comment(api, 1)
    _release()
    [message] = _digest_messages()
    assert api.post(f"/api/v1/notifications/{message.id}/cancel/").json()["status"] == "cancelled"
    assert _release()["digests_settled"] == 1
    assert _status(member) == Status.CANCELLED


# --- admin ---------------------------------------------------------------------------------------------

def test_the_admin_edits_category_digests_and_shows_groups_and_fallback_steps(api, alice, client):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("op", "op@example.com", "pw-op-12345",
                                                            is_staff=True, is_superuser=True))
    category = Category.objects.get(slug="marketing")
    response = client.post("/admin/workflows/categorydigest/add/", {
        "category": category.pk, "key": "weekly", "window_seconds": "3600", "template": ""})
    assert response.status_code == 302, response.content
    assert CategoryDigest.objects.get().as_spec() == {"key": "weekly", "window_seconds": 3600, "template": ""}
    _comment(api, 1)
    post(api, recipient="alice", title="t", body="b", fallback=[{"channel": "email", "after_seconds": 60}])
    group = DigestGroup.objects.get()
    for url in ("/admin/workflows/categorydigest/", "/admin/workflows/digestgroup/",
                f"/admin/workflows/digestgroup/{group.pk}/change/", "/admin/workflows/fallbackstep/",
                "/admin/workflows/fallbackstep/?state=pending"):
        assert client.get(url).status_code == 200, url
    assert client.get("/admin/workflows/digestgroup/add/").status_code == 403
