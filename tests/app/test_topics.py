"""Topics and their subscribers (/api/v1/topics/), topic preferences and the broadcast's subscriber page,
on real PostgreSQL."""
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework import status
from rest_framework.test import APIClient

from apps.apikeys.models import default_project_id
from apps.apikeys.services import api_key_create
from apps.recipients.models import Recipient
from apps.recipients.services import recipient_erase
from apps.topics.models import Topic, TopicPreference, TopicSubscription
from apps.topics.selectors import topic_subscriber_page
from apps.topics.services import topic_subscribe

pytestmark = pytest.mark.django_db

TOPIC = "/api/v1/topics/product-updates/"
SUBSCRIBERS = TOPIC + "subscribers/"


def _client(issued) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    return client


def _recipients(*external_ids, project_id=None) -> list[Recipient]:
    # The project given once: the field's default (default_project_id) is one query per Recipient made,
    # 10,000 of them for the largest subscribe below.
    project_id = project_id or default_project_id()
    return Recipient.objects.bulk_create([Recipient(external_id=e, project_id=project_id) for e in external_ids])


def _topic(api, path=TOPIC, **body) -> dict:
    response = api.put(path, body or {"name": "Product updates"}, format="json")
    assert response.status_code in (status.HTTP_200_OK, status.HTTP_201_CREATED), response.content
    return response.json()


def _subscribe(api, *external_ids, path=SUBSCRIBERS):
    return api.post(path, {"recipients": list(external_ids)}, format="json")


@pytest.fixture
def other():
    """A key of another project, with every scope."""
    return _client(api_key_create(name="other", project="project-b"))


# --- topics -------------------------------------------------------------------------------------

def test_put_creates_a_topic_with_201_and_updates_it_with_200(api):
    response = api.put(TOPIC, {"name": "Product updates", "description": "What we ship"}, format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content
    assert response["Location"] == TOPIC
    created = response.json()
    assert created["key"] == "product-updates"
    assert (created["name"], created["description"], created["subscriber_count"]) == \
        ("Product updates", "What we ship", 0)

    response = api.put(TOPIC, {"description": "Releases"}, format="json")
    assert response.status_code == status.HTTP_200_OK
    assert (response.json()["name"], response.json()["description"]) == ("Product updates", "Releases")
    assert Topic.objects.count() == 1


def test_a_topics_answer_can_be_put_back_unchanged(api):
    document = _topic(api, description="x")
    response = api.put(TOPIC, document, format="json")
    assert response.status_code == status.HTTP_200_OK, response.content


def test_get_shows_the_topic_with_its_subscriber_count(api):
    _topic(api)
    _recipients("u1", "u2", "u3")
    _subscribe(api, "u1", "u2")
    response = api.get(TOPIC)
    assert response.status_code == status.HTTP_200_OK
    assert response.json()["subscriber_count"] == 2
    assert api.get("/api/v1/topics/nope/").status_code == status.HTTP_404_NOT_FOUND


def test_the_topic_list_pages_through_the_projects_topics_by_key(api, other):
    for key in ("c", "a", "b"):
        _topic(api, f"/api/v1/topics/{key}/")
    _topic(other, "/api/v1/topics/a-of-b/")
    first = api.get("/api/v1/topics/?page_size=2").json()
    assert [t["key"] for t in first["results"]] == ["a", "b"]
    second = api.get(first["next"]).json()
    assert [t["key"] for t in second["results"]] == ["c"]
    assert second["next"] is None


@pytest.mark.parametrize("key", ["bad key", "-leading-dash", "a" * 101, "é"])
def test_a_topic_key_that_is_not_slug_like_is_a_400_under_key(api, key):
    response = api.put(f"/api/v1/topics/{key}/", {"name": "x"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "key" in response.json()["errors"]


def test_keys_may_hold_dots_colons_and_underscores(api):
    response = api.put("/api/v1/topics/order:1234.status_v2/", {}, format="json")
    assert response.status_code == status.HTTP_201_CREATED, response.content


def test_put_refuses_unknown_fields_and_a_key_that_does_not_match_the_url(api):
    response = api.put(TOPIC, {"nmae": "typo"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json()["errors"] == {"nmae": ["Unknown field."]}
    response = api.put(TOPIC, {"key": "other"}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "key" in response.json()["errors"]
    assert not Topic.objects.exists()


def test_delete_removes_the_topic_its_subscriptions_and_the_preferences_set_for_it(api):
    _topic(api)
    _recipients("u1", "u2")
    _subscribe(api, "u1", "u2")
    api.put("/api/v1/recipients/u1/preferences/", {"topics": {"product-updates": {"email": False}}}, format="json")
    assert TopicPreference.objects.count() == 1

    response = api.delete(TOPIC)
    assert response.status_code == status.HTTP_204_NO_CONTENT
    assert api.get(TOPIC).status_code == status.HTTP_404_NOT_FOUND
    assert not TopicSubscription.objects.exists() and not TopicPreference.objects.exists()
    assert Recipient.objects.count() == 2
    assert api.delete(TOPIC).status_code == status.HTTP_404_NOT_FOUND


# --- ownership ----------------------------------------------------------------------------------

def test_another_projects_topic_is_not_found(api, other):
    _topic(api)
    _recipients("u1")
    assert other.get(TOPIC).status_code == status.HTTP_404_NOT_FOUND
    assert other.delete(TOPIC).status_code == status.HTTP_404_NOT_FOUND
    assert other.get(SUBSCRIBERS).status_code == status.HTTP_404_NOT_FOUND
    assert _subscribe(other, "u1").status_code == status.HTTP_404_NOT_FOUND
    assert other.delete(SUBSCRIBERS, {"recipients": ["u1"]}, format="json").status_code == 404
    assert other.get("/api/v1/topics/").json()["results"] == []
    # A PUT of the same key makes the other project's own topic, leaving the first alone.
    assert other.put(TOPIC, {"name": "B's"}, format="json").status_code == status.HTTP_201_CREATED
    assert api.get(TOPIC).json()["name"] == "Product updates"
    assert Topic.objects.count() == 2


def test_another_projects_recipients_are_not_subscribable_and_are_reported_unknown(api, other):
    _topic(api)
    _topic(other, "/api/v1/topics/b-topic/")
    b = Topic.objects.get(key="b-topic")
    _recipients("theirs", project_id=b.project_id)
    response = _subscribe(api, "theirs")
    assert response.status_code == status.HTTP_200_OK
    assert response.json() == {"subscribed": 0, "already": 0, "unknown": ["theirs"], "unknown_count": 1}
    assert not TopicSubscription.objects.exists()


# --- subscribing --------------------------------------------------------------------------------

def test_subscribing_reports_new_already_subscribed_and_unknown_recipients(api):
    _topic(api)
    _recipients("u1", "u2", "u3")
    assert _subscribe(api, "u1").json() == {"subscribed": 1, "already": 0, "unknown": [], "unknown_count": 0}
    response = _subscribe(api, "u1", "ghost", "u2", "u3", "u2", "ghost", "phantom")
    assert response.status_code == status.HTTP_200_OK
    assert response.json() == {"subscribed": 2, "already": 1, "unknown": ["ghost", "phantom"], "unknown_count": 2}
    assert not Recipient.objects.filter(external_id__in=["ghost", "phantom"]).exists()  # reported, not created
    assert TopicSubscription.objects.count() == 3


def test_the_unknown_list_is_capped_at_100_with_the_full_count(api):
    _topic(api)
    response = _subscribe(api, *[f"ghost-{i}" for i in range(250)])
    body = response.json()
    assert body["unknown"] == [f"ghost-{i}" for i in range(100)]
    assert body["unknown_count"] == 250


def test_ten_thousand_recipients_are_subscribed_in_one_call(api):
    _topic(api)
    ids = [f"user-{i}" for i in range(10_000)]
    _recipients(*ids)
    response = _subscribe(api, *ids)
    assert response.status_code == status.HTTP_200_OK, response.content[:300]
    assert response.json() == {"subscribed": 10_000, "already": 0, "unknown": [], "unknown_count": 0}
    assert api.get(TOPIC).json()["subscriber_count"] == 10_000
    assert _subscribe(api, *ids).json()["already"] == 10_000


def test_a_subscribe_resolves_the_ids_in_one_query_and_inserts_in_one_statement(api):
    _topic(api)
    ids = [f"user-{i}" for i in range(500)]
    _recipients(*ids)
    topic = Topic.objects.get()
    with CaptureQueriesContext(connection) as queries:
        result = topic_subscribe(topic=topic, external_ids=ids)
    assert result.subscribed == 500
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 3, statements  # lock the topic, resolve (and lock) the recipients, insert
    assert "recipients_recipient" in statements[1] and "ANY(" in statements[1]
    assert statements[2].startswith("INSERT INTO topics_topicsubscription") and "ON CONFLICT DO NOTHING" in \
        statements[2]


@pytest.mark.parametrize("body,message", [
    ({"recipients": [f"u{i}" for i in range(10_001)]}, "At most 10,000"),
    ({"recipients": []}, "at least one"),
    ({}, "required"),
    ({"recipients": "u1"}, "list"),
    ({"recipients": ["u1", 7]}, "index 1"),
    ({"recipients": ["u1", ""]}, "index 1"),
    ({"recipients": ["x" * 256]}, "index 0"),
    ({"recipients": ["nul\x00"]}, None),  # refused by the JSON parser already
    ({"recipients": ["u1"], "extra": 1}, None),
])
def test_a_bad_subscriber_list_is_a_400_and_subscribes_nobody(api, body, message):
    _topic(api)
    _recipients("u1")
    for method in (api.post, api.delete):
        response = method(SUBSCRIBERS, body, format="json")
        assert response.status_code == status.HTTP_400_BAD_REQUEST, response.content[:300]
        errors = response.json()["errors"]
        if message:
            assert message in " ".join(errors["recipients"])
    assert not TopicSubscription.objects.exists()


def test_unsubscribing_removes_the_subscriptions_and_reports_unknown_ids(api):
    _topic(api)
    _recipients("u1", "u2", "u3")
    _subscribe(api, "u1", "u2", "u3")
    response = api.delete(SUBSCRIBERS, {"recipients": ["u1", "u2", "ghost", "u1"]}, format="json")
    assert response.status_code == status.HTTP_200_OK
    assert response.json() == {"removed": 2, "unknown": ["ghost"], "unknown_count": 1}
    assert api.delete(SUBSCRIBERS, {"recipients": ["u1"]}, format="json").json()["removed"] == 0
    assert list(TopicSubscription.objects.values_list("recipient__external_id", flat=True)) == ["u3"]


def test_the_subscriber_list_pages_by_recipient_and_shows_external_ids(api):
    _topic(api)
    _recipients("u1", "u2", "u3")
    _subscribe(api, "u3", "u1", "u2")
    first = api.get(SUBSCRIBERS + "?page_size=2").json()
    assert [s["recipient"] for s in first["results"]] == ["u1", "u2"]
    assert set(first["results"][0]) == {"recipient", "subscribed_at"}
    second = api.get(first["next"]).json()
    assert [s["recipient"] for s in second["results"]] == ["u3"] and second["next"] is None


# --- scopes -------------------------------------------------------------------------------------

def test_a_read_key_reads_topics_but_cannot_write_them(api):
    _topic(api)
    _recipients("u1")
    reader = _client(api_key_create(name="reader", scopes=["recipients:read"]))
    assert reader.get(TOPIC).status_code == status.HTTP_200_OK
    assert reader.get(SUBSCRIBERS).status_code == status.HTTP_200_OK
    assert reader.get("/api/v1/topics/").status_code == status.HTTP_200_OK
    assert reader.put(TOPIC, {"name": "x"}, format="json").status_code == status.HTTP_403_FORBIDDEN
    assert reader.delete(TOPIC).status_code == status.HTTP_403_FORBIDDEN
    assert _subscribe(reader, "u1").status_code == status.HTTP_403_FORBIDDEN
    assert reader.delete(SUBSCRIBERS, {"recipients": ["u1"]}, format="json").status_code == 403
    assert not TopicSubscription.objects.exists()


def test_a_key_without_recipient_scopes_cannot_read_topics(api):
    _topic(api)
    sender = _client(api_key_create(name="sender", scopes=["notifications:write", "notifications:read"]))
    assert sender.get(TOPIC).status_code == status.HTTP_403_FORBIDDEN
    assert sender.get("/api/v1/topics/").status_code == status.HTTP_403_FORBIDDEN
    assert sender.get(SUBSCRIBERS).status_code == status.HTTP_403_FORBIDDEN


# --- topic preferences --------------------------------------------------------------------------

PREFS = "/api/v1/recipients/u1/preferences/"


def test_a_topic_mute_is_stored_per_channel_returned_and_merged(api):
    _topic(api)
    _topic(api, "/api/v1/topics/digest/")
    _recipients("u1")
    response = api.put(PREFS, {"topics": {"product-updates": {"email": False, "sms": True}}}, format="json")
    assert response.status_code == status.HTTP_200_OK, response.content
    assert response.json()["topics"] == {"product-updates": {"email": False, "sms": True}}
    assert set(TopicPreference.objects.values_list("channel", "enabled")) == {("email", False), ("sms", True)}

    api.put(PREFS, {"topics": {"product-updates": {"push": False}, "digest": {"in_app": False}}}, format="json")
    api.put(PREFS, {"channels": {"sms": False}}, format="json")  # the other parts leave topics alone
    document = api.get(PREFS).json()
    assert document["topics"] == {"digest": {"in_app": False},
                                  "product-updates": {"email": False, "push": False, "sms": True}}
    assert document["channels"]["sms"] is False

    api.put(PREFS, {"topics": {"product-updates": {"email": None}, "digest": None}}, format="json")
    assert api.get(PREFS).json()["topics"] == {"product-updates": {"push": False, "sms": True}}


def test_a_new_recipients_preferences_have_no_topic_settings(api):
    _recipients("u1")
    assert api.get(PREFS).json()["topics"] == {}


@pytest.mark.parametrize("topics,fragment", [
    ({"no-such-topic": {"email": False}}, "Unknown topic 'no-such-topic'"),
    ({"b-topic": {"email": False}}, "Unknown topic 'b-topic'"),  # another project's
    ({"product-updates": {"fax": False}}, "Unknown channel 'fax'"),
    ({"product-updates": {"email": "off"}}, "true, false or null"),
    ({"product-updates": ["email"]}, "must be an object"),
])
def test_a_bad_topic_in_the_preferences_is_a_400_under_topics(api, other, topics, fragment):
    _topic(api)
    _topic(other, "/api/v1/topics/b-topic/")
    _recipients("u1")
    response = api.put(PREFS, {"topics": topics}, format="json")
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert fragment in " ".join(response.json()["errors"]["topics"])
    assert not TopicPreference.objects.exists()


def test_erasing_a_recipient_removes_its_subscriptions_and_topic_preferences(api):
    _topic(api)
    _recipients("u1", "u2")
    _subscribe(api, "u1", "u2")
    api.put(PREFS, {"topics": {"product-updates": {"email": False}}}, format="json")
    assert api.delete("/api/v1/recipients/u1/").status_code == status.HTTP_204_NO_CONTENT
    assert list(TopicSubscription.objects.values_list("recipient__external_id", flat=True)) == ["u2"]
    assert not TopicPreference.objects.exists()
    assert api.get(TOPIC).json()["subscriber_count"] == 1


# --- the broadcast's subscriber page ------------------------------------------------------------

def _subscribed_topic(api, n: int) -> tuple[Topic, list[Recipient]]:
    _topic(api)
    recipients = _recipients(*[f"user-{i:03}" for i in range(n)])
    _subscribe(api, *[r.external_id for r in recipients])
    return Topic.objects.get(key="product-updates"), sorted(recipients, key=lambda r: r.pk)


def _mute(recipient, topic, channel, enabled=False):
    TopicPreference.objects.create(recipient=recipient, topic=topic, channel=channel, enabled=enabled)


def test_the_subscriber_page_leaves_out_recipients_who_muted_the_topic_on_that_channel_only(api):
    topic, recipients = _subscribed_topic(api, 5)
    other_topic = Topic.objects.create(project_id=topic.project_id, key="other")
    _mute(recipients[1], topic, "email")
    _mute(recipients[2], topic, "sms")
    _mute(recipients[3], other_topic, "email")  # another topic's mute does not count
    _mute(recipients[4], topic, "email", enabled=True)  # an explicit "on" is no mute

    with CaptureQueriesContext(connection) as queries:
        page = topic_subscriber_page(topic_id=topic.pk, channel="email", limit=100)
    assert len(queries.captured_queries) == 1
    assert [r.external_id for r in page.recipients] == ["user-000", "user-002", "user-003", "user-004"]
    assert page.after is None
    sms = topic_subscriber_page(topic_id=topic.pk, channel="sms", limit=100)
    assert [r.external_id for r in sms.recipients] == ["user-000", "user-001", "user-003", "user-004"]


def test_the_subscriber_page_gives_the_recipient_fields_a_send_reads_without_another_query(api):
    topic, _ = _subscribed_topic(api, 1)
    Recipient.objects.filter(external_id="user-000").update(
        email="a@example.com", phone="+12025550123", timezone="Europe/Lisbon", locale="pt-PT", name="Ana",
        quiet_hours_start="22:00", quiet_hours_end="07:00")
    with CaptureQueriesContext(connection) as queries:
        (recipient,) = topic_subscriber_page(topic_id=topic.pk, channel="email").recipients
        seen = (recipient.pk, recipient.external_id, recipient.project_id, recipient.email, recipient.phone,
                recipient.timezone, recipient.locale, recipient.name, recipient.quiet_hours)
    assert len(queries.captured_queries) == 1
    assert isinstance(recipient, Recipient)
    assert seen[1:2] + seen[3:8] == ("user-000", "a@example.com", "+12025550123", "Europe/Lisbon", "pt-PT", "Ana")
    assert [t.strftime("%H:%M") for t in seen[8]] == ["22:00", "07:00"]


def test_paging_streams_every_unmuted_subscriber_once_in_id_order_even_past_an_all_muted_page(api):
    topic, recipients = _subscribed_topic(api, 10)
    for recipient in recipients[3:6]:  # a whole page of 3
        _mute(recipient, topic, "push")
    seen, after, pages = [], 0, 0
    while after is not None:
        page = topic_subscriber_page(topic_id=topic.pk, channel="push", after=after, limit=3)
        seen += [r.pk for r in page.recipients]
        after, pages = page.after, pages + 1
    assert seen == [r.pk for r in recipients[:3] + recipients[6:]]
    assert pages == 4


def test_the_subscriber_page_is_a_range_of_the_primary_key_and_mutes_come_from_their_index():
    """The page needs no sort and no table read of its own: an index-only range of the primary key
    (topic_id, recipient_id); mutes are read from topic_preference_unique (topic, recipient, channel).
    (On the test's near-empty tables the planner would pick anything: the plan is asked for with the
    alternatives off, to show the indexes serve it; measured on a million rows in docs/topics.md.)"""
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        topic_subscriber_page(topic_id=1, channel="email", after=0, limit=1000)
    (sql, params), = statements
    off = ("seqscan", "bitmapscan", "sort", "hashjoin", "mergejoin")
    with connection.cursor() as cursor:
        for name in off:
            cursor.execute(f"SET LOCAL enable_{name} = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        for name in off:
            cursor.execute(f"SET LOCAL enable_{name} = on")
    assert "Index Only Scan using topics_topicsubscription_pkey" in plan, plan
    assert "Sort" not in plan and "Seq Scan" not in plan, plan
    assert "Index Scan using topic_preference_unique" in plan, plan


# --- concurrency --------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_recipient_erased_while_a_subscribe_is_in_flight_keeps_no_subscription():
    """Subscriptions have no foreign keys in the database: the subscribe's row locks make the erase wait
    for it and then delete the subscription it made."""
    topic = Topic.objects.create(key="t")
    (recipient,) = _recipients("u1")
    subscribed, erased = threading.Event(), threading.Event()
    release = threading.Event()

    def subscribe():
        try:
            with transaction.atomic():
                topic_subscribe(topic=topic, external_ids=["u1"])
                subscribed.set()
                release.wait(10)
        finally:
            connections.close_all()

    def erase():
        try:
            recipient_erase(recipient=Recipient.objects.get(pk=recipient.pk))
            erased.set()
        finally:
            connections.close_all()

    subscriber = threading.Thread(target=subscribe)
    subscriber.start()
    assert subscribed.wait(10)
    eraser = threading.Thread(target=erase)
    eraser.start()
    assert not erased.wait(0.5)  # waits for the subscribe's lock
    release.set()
    subscriber.join(10)
    eraser.join(10)
    assert erased.is_set()
    assert not Recipient.objects.exists()
    assert not TopicSubscription.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_subscribe_after_an_erase_began_finds_no_recipient():
    topic = Topic.objects.create(key="t")
    (recipient,) = _recipients("u1")
    results = []
    with transaction.atomic():
        Recipient.objects.select_for_update().filter(pk=recipient.pk).first()  # as recipient_erase does

        def subscribe():
            try:
                results.append(topic_subscribe(topic=topic, external_ids=["u1"]))
            finally:
                connections.close_all()

        subscriber = threading.Thread(target=subscribe)
        subscriber.start()
        subscriber.join(0.5)
        assert subscriber.is_alive()  # waits for the erase
        recipient.delete()
    subscriber.join(10)
    assert results[0].subscribed == 0 and results[0].unknown == ["u1"]
    assert not TopicSubscription.objects.exists()


# --- admin --------------------------------------------------------------------------------------

@pytest.fixture
def staff(client):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("operator", "op@example.com", "pw-operator-123",
                                                is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_the_topic_admin_list_searches_filters_and_counts_no_subscribers(staff, api):
    topic, _ = _subscribed_topic(api, 3)
    with CaptureQueriesContext(connection) as queries:
        response = staff.get("/admin/topics/topic/")
    assert response.status_code == 200 and b"product-updates" in response.content
    assert not [q for q in queries.captured_queries if "topics_topicsubscription" in q["sql"]]
    assert b"product-updates" in staff.get("/admin/topics/topic/?q=product").content
    assert b"product-updates" not in staff.get("/admin/topics/topic/?q=zzz").content.split(b"result_list")[-1]
    assert staff.get(f"/admin/topics/topic/?project__id__exact={topic.project_id}").status_code == 200


def test_the_topic_change_page_shows_the_count_and_only_the_first_50_subscribers(staff, api):
    topic, recipients = _subscribed_topic(api, 60)
    response = staff.get(f"/admin/topics/topic/{topic.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<div class="readonly">60</div>' in page
    assert recipients[49].external_id in page and recipients[50].external_id not in page


def test_the_topic_admin_makes_a_topic_and_subscribes_and_unsubscribes_by_external_id(staff, api, other):
    from apps.apikeys.models import Project

    _recipients("u1", "u2")
    b = Project.objects.get(slug="project-b")
    _recipients("theirs", project_id=b.pk)
    default = Recipient.objects.get(external_id="u1").project_id
    response = staff.post("/admin/topics/topic/add/", {
        "project": default, "key": "news", "name": "News", "description": "", "subscribe": "u1, u2\ntheirs ghost",
        "unsubscribe": ""})
    assert response.status_code == 302, response.content[:2000]
    topic = Topic.objects.get(key="news")
    assert sorted(TopicSubscription.objects.filter(topic=topic).values_list("recipient__external_id", flat=True)) \
        == ["u1", "u2"]
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("Subscribed 2" in m and "theirs" in m and "ghost" in m for m in messages), messages

    response = staff.post(f"/admin/topics/topic/{topic.pk}/change/", {
        "name": "News", "description": "", "subscribe": "", "unsubscribe": "u2"})
    assert response.status_code == 302
    assert list(TopicSubscription.objects.values_list("recipient__external_id", flat=True)) == ["u1"]


def test_the_topic_admin_refuses_a_bad_key_and_a_duplicate_key_in_a_project(staff):
    from apps.apikeys.models import default_project_id

    Topic.objects.create(key="news")
    for key in ("bad key", "news"):
        response = staff.post("/admin/topics/topic/add/", {"project": default_project_id(), "key": key, "name": "",
                                                          "description": "", "subscribe": "", "unsubscribe": ""})
        assert response.status_code == 200 and response.context["adminform"].form.errors, key
    assert Topic.objects.count() == 1


def test_a_topic_preference_in_the_admin_must_join_a_recipient_and_topic_of_one_project(staff, other):
    from apps.apikeys.models import Project

    b = Project.objects.get(slug="project-b")
    (mine,) = _recipients("u1")
    theirs = Topic.objects.create(key="t", project=b)
    response = staff.post("/admin/topics/topicpreference/add/", {
        "recipient": mine.pk, "topic": theirs.pk, "channel": "email", "enabled": ""})
    assert response.status_code == 200
    assert "different projects" in str(response.context["adminform"].form.errors)
    assert staff.get("/admin/topics/topicpreference/").status_code == 200
