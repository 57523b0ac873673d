"""A broadcast page's plain subscribers are inserted by one statement without running the acceptance checks in
Python (apps/broadcasts/expansion.py); everyone the checks could act on goes through them. These tests
expand the same subscribers both ways and expect the same notifications, events and counts, on real
PostgreSQL and Redis."""
from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from rest_framework import status

from apps.broadcasts import expansion, services
from apps.broadcasts.models import Broadcast
from apps.notifications import policy
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
MAIL = {"subject": "Release 2.0", "body": "It is out."}
# Compared between the two ways (the rest differ by nature: id, times).
FIELDS = ("channel", "to", "category", "priority", "template", "locale", "content", "status", "attempts",
          "attempts_at_replay", "last_error", "provider", "provider_message_id", "scheduled_for", "expires_at",
          "next_attempt_at", "claimed_at", "metadata", "group_key", "sent_at", "delivered_at", "api_key_id",
          "project_id", "claim_timeouts")


def _subscribers(api_key, key: str) -> Topic:
    """Subscribers of every kind: plain ones, a muted one, opted out (of the category, of the channel),
    opted back in, quiet hours, suppressed (in another case), no address, an address with a space or
    not ASCII."""
    project_id = api_key.api_key.project_id
    topic = Topic.objects.create(project_id=project_id, key=key)
    emails = {"plain1": "plain1@example.com", "plain2": "Plain2@Example.COM", "muted": "muted@example.com",
              "opted-out": "o@example.com", "channel-off": "c@example.com", "opted-in": "i@example.com",
              "quiet": "q@example.com", "suppressed": "Suppressed@Example.com", "none": "",
              "spaced": " s@example.com", "accented": "zoë@example.com"}
    Recipient.objects.bulk_create([Recipient(project_id=project_id, external_id=e, email=address, locale="")
                                   for e, address in emails.items()], ignore_conflicts=True)
    topic_subscribe(topic=topic, external_ids=list(emails))
    recipient = Recipient.objects.get
    preferences_update(recipient=recipient(external_id="muted"), topics={key: {"email": False}})
    preferences_update(recipient=recipient(external_id="opted-out"), categories={"marketing": {"email": False}})
    preferences_update(recipient=recipient(external_id="channel-off"), channels={"email": False})
    preferences_update(recipient=recipient(external_id="opted-in"), categories={"marketing": {"email": True}})
    Recipient.objects.filter(external_id="quiet").update(quiet_hours_start="22:00", quiet_hours_end="07:00",
                                                          timezone="UTC")
    return topic


def _expand(api, key: str) -> tuple[str, dict]:
    response = api.post(EMAIL, {"topic": key, "category": "marketing", "metadata": {"c": 1}, "group_key": "g",
                                **MAIL}, format="json")
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    broadcast_id = response.json()["broadcast_id"]
    services.broadcasts_expand(first=broadcast_id, budget=60)
    made = {}
    for n in Notification.objects.filter(broadcast_id=broadcast_id).select_related("recipient"):
        assert n.recipient.external_id not in made
        event = NotificationEvent.objects.get(notification=n)
        made[n.recipient.external_id] = ({f: getattr(n, f) for f in FIELDS}, (event.status, event.detail))
    return broadcast_id, made


def test_plain_subscribers_skip_the_checks_in_python_and_get_what_the_checks_would_give(api, api_key, monkeypatch):
    suppressions_record(items=[SuppressionInput(channel="email", address="suppressed@example.com",
                                                reason="hard_bounce")])
    clock.freeze(datetime(2026, 1, 15, 23, 0, tzinfo=dt_timezone.utc))
    _subscribers(api_key, "fast")
    checked: list[str] = []
    check = policy.at_acceptance

    def counting(specs, now):
        checked.extend(s.recipient.external_id for s in specs)
        return check(specs, now)

    monkeypatch.setattr(policy, "at_acceptance", counting)
    fast_id, fast = _expand(api, "fast")
    assert sorted(checked) == ["accented", "channel-off", "opted-out", "quiet", "spaced", "suppressed"]

    _subscribers(api_key, "slow")
    monkeypatch.setattr(expansion, "shortcut_applies", lambda broadcast: False)
    slow_id, slow = _expand(api, "slow")

    assert fast == slow
    assert {e: row["status"] for e, (row, _) in fast.items()} == {
        "plain1": "queued", "plain2": "queued", "opted-out": "suppressed", "channel-off": "suppressed",
        "opted-in": "queued", "quiet": "scheduled", "suppressed": "suppressed", "spaced": "queued",
        "accented": "queued"}
    assert fast["plain1"][1] == ("queued", "")
    assert fast["quiet"][0]["next_attempt_at"] == datetime(2026, 1, 16, 7, 0, tzinfo=dt_timezone.utc)
    for broadcast_id in (fast_id, slow_id):
        stored = Broadcast.objects.get(pk=broadcast_id)
        assert (stored.status, stored.created, stored.skipped) == ("expanded", 9, 1)


def test_sms_subscribers_are_classified_by_phone(api, api_key, monkeypatch):
    suppressions_record(items=[SuppressionInput(channel="sms", address="+12025550199", reason="unsubscribed")])
    project_id = api_key.api_key.project_id
    phones = {"a": "+12025550101", "b": "+12025550199", "c": "", "d": "+12025550102"}
    for key in ("fast", "slow"):
        Topic.objects.create(project_id=project_id, key=key)
        Recipient.objects.bulk_create([Recipient(project_id=project_id, external_id=f"{key}-{e}", phone=phone,
                                                 email=f"{e}@example.com") for e, phone in phones.items()])
        topic_subscribe(topic=Topic.objects.get(key=key), external_ids=[f"{key}-{e}" for e in phones])

    def expand(key):
        response = api.post("/api/v1/notifications/sms/", {"topic": key, "body": "hi"}, format="json")
        assert response.status_code == status.HTTP_202_ACCEPTED, response.content
        broadcast_id = response.json()["broadcast_id"]
        services.broadcasts_expand(first=broadcast_id, budget=60)
        stored = Broadcast.objects.get(pk=broadcast_id)
        return (stored.created, stored.skipped), {
            e.split("-")[1]: (s, d) for e, s, d in Notification.objects.filter(broadcast_id=broadcast_id)
            .values_list("recipient__external_id", "status", "events__detail")}

    fast = expand("fast")
    monkeypatch.setattr(expansion, "shortcut_applies", lambda broadcast: False)
    assert expand("slow") == fast
    assert {e: s for e, (s, _) in fast[1].items()} == {"a": "queued", "b": "suppressed", "d": "queued"}
    assert fast[0] == (3, 1)


def test_a_capped_category_or_other_acceptance_checks_take_every_subscriber_through_the_checks(api, api_key,
                                                                                                monkeypatch):
    topic = Topic.objects.create(project_id=api_key.api_key.project_id, key="t")
    broadcast = Broadcast(channel="email", category="marketing", topic=topic)
    assert expansion.shortcut_applies(broadcast)
    assert not expansion.shortcut_applies(Broadcast(channel="push", category="marketing", topic=topic))
    Category.objects.filter(slug="marketing").update(cap_count=1, cap_period_seconds=86400)
    clear_cache()
    assert not expansion.shortcut_applies(broadcast)
    Category.objects.filter(slug="marketing").update(cap_count=0)
    clear_cache()
    monkeypatch.setattr(policy, "ACCEPTANCE_CHECKS", [*policy.ACCEPTANCE_CHECKS, "x.y"])
    assert not expansion.shortcut_applies(broadcast)


def test_a_page_of_plain_subscribers_is_published_and_counted_like_a_batch(api, api_key, monkeypatch):
    from apps.notifications import outbox

    published: list = []
    monkeypatch.setattr(outbox, "publish_on_commit", lambda items, **options: published.extend(items))
    project_id = api_key.api_key.project_id
    Topic.objects.create(project_id=project_id, key="many")
    Recipient.objects.bulk_create([Recipient(project_id=project_id, external_id=f"m{i}", email=f"m{i}@example.com")
                                   for i in range(50)])
    topic_subscribe(topic=Topic.objects.get(key="many"), external_ids=[f"m{i}" for i in range(50)])

    broadcast_id, made = _expand(api, "many")

    ids = set(Notification.objects.filter(broadcast_id=broadcast_id).values_list("id", flat=True))
    assert len(made) == 50 and {str(i) for i in ids} == {i for i, _ in published}
    assert {priority for _, priority in published} == {"low"}
