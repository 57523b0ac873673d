"""Shared fixtures.

Tests use their own PostgreSQL database, RabbitMQ vhost and Redis database
(see config/settings/test.py), start from a clean state, and stop every
process they start.
"""
from __future__ import annotations

import pytest
from django.conf import settings


def _purge_broker() -> None:
    """Delete the test vhost's queues so each run starts empty and re-declares them."""
    from config.celery_app import app

    with app.connection_for_write() as conn:
        channel = conn.channel()
        for name in [*(q.name for q in settings.CELERY_TASK_QUEUES), settings.NOTIFIER_DEAD_QUEUE]:
            try:
                channel.queue_delete(name)
            except Exception:  # noqa: BLE001 - not there yet
                channel = conn.channel()
        channel.close()

    from apps.notifications import outbox

    outbox._declared = False
    outbox.declare_topology()


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session", autouse=True)
def clean_services():
    assert "test" in settings.DATABASES["default"]["NAME"] or settings.DATABASES["default"]["NAME"].startswith(
        "notifier_"), "tests must not run against the main database"
    _flush_redis()
    _purge_broker()
    yield


@pytest.fixture
def purge_queues():
    """Empty the priority queues, the maintenance queue and the dead-letter queue."""
    _purge_broker()
    yield


@pytest.fixture(autouse=True)
def _defaults(request):
    """Default categories (flushed by transactional tests) and fresh in-process caches."""
    from apps.apikeys.services import clear_cache as clear_key_cache
    from apps.notifications.categories import clear_cache as clear_category_cache
    from notifier.channels.registry import providers_for

    clear_key_cache()
    clear_category_cache()
    providers_for.cache_clear()
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    wants_db = None
    if "transactional_db" in names or (marker and marker.kwargs.get("transaction")):
        wants_db = "transactional_db"
    elif "db" in names or marker:
        wants_db = "db"
    if wants_db:
        from apps.notifications.categories import ensure_default_categories

        request.getfixturevalue(wants_db)
        ensure_default_categories()
    yield
    providers_for.cache_clear()
    if wants_db == "transactional_db":
        from apps.notifications.intake.groupcommit import group_committer_stop

        group_committer_stop()  # its connection would keep the test database busy
    elif wants_db:
        from apps.notifications.outbox import publisher_drain

        publisher_drain()  # the publisher thread's connection too (it deletes PendingPublish entries)


@pytest.fixture
def api_key(db):
    from apps.apikeys.services import api_key_create

    return api_key_create(name="tests")


@pytest.fixture
def api(api_key):
    """An APIClient authenticated with a key that has every scope."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.raw}")
    return client


@pytest.fixture
def smtp_sink():
    from notifier.devtools.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    yield sink
    sink.stop()


# What PostgreSQL answers while ``webhook_inserts_fail`` is on.
WEBHOOK_INSERTS_REFUSED = "webhook deliveries refused by a test trigger"


@pytest.fixture
def webhook_inserts_fail(transactional_db):
    """PostgreSQL refuses every insert of a webhook delivery (as a full disk or a broken constraint would),
    for every process using the test database, until ``.repair()`` (``.fail()`` breaks it again)."""
    from types import SimpleNamespace

    from django.db import connection

    from apps.notifications.models import Notification

    table = Notification._meta.db_table

    def fail():
        with connection.cursor() as cursor:
            cursor.execute(f"""
                CREATE OR REPLACE FUNCTION test_refuse_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION '{WEBHOOK_INSERTS_REFUSED}'; END $$;
                DROP TRIGGER IF EXISTS test_refuse_webhooks ON {table};
                CREATE TRIGGER test_refuse_webhooks BEFORE INSERT ON {table}
                FOR EACH ROW WHEN (NEW.channel = 'webhook') EXECUTE FUNCTION test_refuse_webhooks();
            """)

    def repair():
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS test_refuse_webhooks ON {table};"
                           f" DROP FUNCTION IF EXISTS test_refuse_webhooks();")

    fail()
    yield SimpleNamespace(fail=fail, repair=repair)
    repair()


@pytest.fixture(autouse=True)
def _fresh_circuits():
    """Every test starts with closed circuit breakers (their state lives in Redis)."""
    import redis

    from notifier import circuit

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{circuit.PREFIX}*"))
    if keys:
        client.delete(*keys)
    circuit.reset_breaker()
    yield
    circuit.reset_breaker()


@pytest.fixture
def fake_twilio():
    from tests.peers import FakeTwilio

    peer = FakeTwilio().start()
    yield peer
    peer.stop()


@pytest.fixture
def fake_fcm(tmp_path):
    from tests.peers import FakeFcm

    peer = FakeFcm().start()
    peer.credentials_file = peer.write_credentials(tmp_path / "fcm-service-account.json")
    yield peer
    peer.stop()


@pytest.fixture
def web_push():
    """A Web Push endpoint and the VAPID key pair the sender signs with."""
    from tests.peers import WebPushEndpoint, vapid_key

    private, public = vapid_key()
    peer = WebPushEndpoint(vapid_public_key=public).start()
    peer.vapid_private_key = private
    yield peer
    peer.stop()


@pytest.fixture
def reset_clock_and_caps():
    """Frequency-cap counters cleared before the test; the pipeline's clock put back after it."""
    from apps.notifications.caps import cap_limiter
    from notifier import clock

    client = cap_limiter().client
    for key in client.scan_iter("notifier:cap:*"):
        client.delete(key)
    yield
    clock.reset()
