"""DATABASE_REPLICA_URL: list reads served by a streaming replica, read-your-writes on the primary.

A throwaway primary and a hot standby streaming from it (notifier/devtools/pg_replica.py; the
machine's PostgreSQL allows no replication connection), the API (gunicorn, ASGI, one web process)
on them. To tell which server answered, the replica's replay is paused: a row written after that
exists on the primary only.
"""
import os
import subprocess
import sys

import httpx
import pytest
from django.conf import settings

from notifier.devtools.pg_replica import PgReplicaPair
from tests.live import Gunicorn
from tests.stack import ROOT, wait_for

pytestmark = pytest.mark.integration

KEYS = """
import django
django.setup()
from apps.apikeys.services import api_key_create
for name in ("writer", "batch-writer", "express-writer", "inbox-writer", "reader"):
    print(name, api_key_create(name=name).raw)
"""


@pytest.fixture(scope="module")
def pair():
    pair = PgReplicaPair().start()  # in a temporary directory of its own (run as root, the servers run as postgres)
    pair.create_database("notifier")
    yield pair
    pair.stop()


@pytest.fixture(scope="module")
def env(pair):
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "SECRET_KEY": "replica-test",
        "DATABASE_URL": pair.primary_url("notifier"), "DATABASE_REPLICA_URL": pair.replica_url("notifier"),
        "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "NOTIFIER_EMAIL_PROVIDERS": "null", "NOTIFIER_SMS_PROVIDERS": "null", "NOTIFIER_PUSH_PROVIDERS": "null",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def keys(pair, env):
    environ = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=environ,
                              capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    made = subprocess.run([sys.executable, "-c", KEYS], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    pair.wait_caught_up()
    return dict(line.split() for line in made.stdout.split("\n") if line.strip())


@pytest.fixture(scope="module")
def api(tmp_path_factory, env, keys, clean_services):
    server = Gunicorn(tmp_path_factory.mktemp("web"), workers=1, asgi=True, env=env).start()
    yield server
    server.stop()


@pytest.fixture
def replay_paused(pair):
    pair.wait_caught_up()
    pair.pause_replay()
    yield
    pair.resume_replay()


def client(api, keys, name):
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {keys[name]}"}, timeout=30)


def _email(http, subject):
    response = http.post("/api/v1/notifications/email/", json={"to": "ann@example.com", "subject": subject,
                                                               "body": "hello"})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _listed(http):
    response = http.get("/api/v1/notifications/", params={"page_size": 200})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["results"]}


def test_migrations_ran_on_the_primary_and_reached_the_replica_by_streaming(pair, keys):
    assert pair.query(pair.replica, "SELECT pg_is_in_recovery()")[0][0] is True
    tables = pair.query(pair.replica, "SELECT count(*) FROM django_migrations", database="notifier")[0][0]
    assert tables > 0


def test_a_list_read_is_served_by_the_replica(pair, api, keys):
    with client(api, keys, "writer") as writer, client(api, keys, "reader") as reader:
        before = _email(writer, "before the pause")
        pair.wait_caught_up()
        pair.pause_replay()
        try:
            after = _email(writer, "written while the replica does not replay")
            listed = _listed(reader)
            assert before in listed, "the list comes from a database that has the earlier row"
            assert after not in listed, "... and not the row only the primary has: the replica answered"
        finally:
            pair.resume_replay()
        wait_for(lambda: after in _listed(reader), timeout=30, message="the replica to replay the new row")


def test_a_client_reads_its_own_batch_right_after_writing_it(api, keys, replay_paused):
    with client(api, keys, "batch-writer") as writer, client(api, keys, "reader") as reader:
        response = writer.post("/api/v1/notifications/batch/", json={"notifications": [
            {"channel": "email", "to": "bob@example.com", "subject": "batch", "body": "hello"}]})
        assert response.status_code == 202, response.text
        created = response.json()["results"][0]["id"]

        assert writer.get(f"/api/v1/notifications/{created}/").status_code == 200
        assert created in _listed(writer), "the writer's list comes from the primary"
        assert created not in _listed(reader), "another client's list still comes from the replica"


def test_a_notification_read_right_after_its_express_creation_is_served_by_the_primary(api, keys, replay_paused):
    with client(api, keys, "express-writer") as writer:
        _listed(writer)  # the web process now knows the key: the next single create takes the express lane
        created = _email(writer, "express")

        detail = writer.get(f"/api/v1/notifications/{created}/")
        assert detail.status_code == 200 and detail.json()["id"] == created
        assert created in _listed(writer)


def test_an_inbox_read_is_served_by_the_replica_unless_the_client_just_wrote(pair, api, keys, replay_paused):
    with client(api, keys, "inbox-writer") as writer, client(api, keys, "reader") as reader:
        created = writer.put("/api/v1/recipients/replica-ann/", json={"email": "ann@example.com"})
        assert created.status_code in (200, 201), created.text

        assert writer.get("/api/v1/recipients/replica-ann/inbox/").status_code == 200
        assert reader.get("/api/v1/recipients/replica-ann/inbox/").status_code == 404, \
            "the replica, not replaying, does not know the recipient yet"
        pair.resume_replay()
        wait_for(lambda: reader.get("/api/v1/recipients/replica-ann/inbox/").status_code == 200, timeout=30,
                 message="the replica to replay the recipient")


def test_list_reads_fall_back_to_the_primary_when_the_replica_is_down(pair, api, keys):
    with client(api, keys, "writer") as writer, client(api, keys, "reader") as reader:
        created = _email(writer, "last")
        pair.stop_server(pair.replica, immediate=True)
        assert created in _listed(reader)
