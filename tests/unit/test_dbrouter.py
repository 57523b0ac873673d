"""The read replica router and read-your-writes pins (apps/ops/dbrouter.py)."""
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connections

from apps.ops import dbrouter
from apps.ops.dbrouter import ReplicaRouter, WritePins, client_identity, reads_from_replica, replica_reads


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeCache:
    """Django's cache interface, keys expiring on ``clock``."""

    def __init__(self, clock):
        self.clock, self.data, self.sets = clock, {}, 0

    def set(self, key, value, timeout):
        self.sets += 1
        self.data[key] = (value, self.clock() + timeout)

    def get(self, key):
        value, expires = self.data.get(key, (None, 0))
        return value if self.clock() < expires else None


class BrokenCache:
    def set(self, *args, **kwargs):
        raise ConnectionError("redis down")

    get = set


def test_reads_go_to_the_primary_unless_a_view_asks_for_the_replica():
    router = ReplicaRouter()
    assert router.db_for_read(None) == "default"
    with replica_reads():
        assert router.db_for_read(None) == "replica"
    assert router.db_for_read(None) == "default"


def test_a_replica_read_inside_a_transaction_goes_to_the_primary(monkeypatch):
    monkeypatch.setattr(connections["default"], "in_atomic_block", True)
    with replica_reads():
        assert ReplicaRouter().db_for_read(None) == "default"


def test_writes_and_migrations_go_to_the_primary_only():
    router = ReplicaRouter()
    with replica_reads():
        assert router.db_for_write(None) == "default"
    assert router.allow_migrate("default", "notifications") is True
    assert router.allow_migrate("replica", "notifications") is False


def test_the_client_is_the_api_key_or_the_recipient_of_a_token():
    from datetime import datetime, timezone

    from apps.inbox.tokens import RecipientToken

    assert client_identity(SimpleNamespace(pk=7)) == "k7"
    token = RecipientToken(recipient_id=42, external_id="ann", expires_at=datetime.now(timezone.utc))
    assert client_identity(token) == "r42"
    assert client_identity(None) is None


def test_a_write_pins_its_client_to_the_primary_for_at_least_the_window():
    clock = Clock()
    pins = WritePins(window=5, cache=FakeCache(clock), clock=clock)
    assert not pins.pinned("k1")
    pins.note_write("k1")
    clock.now += 4.9
    assert pins.pinned("k1") and not pins.pinned("k2")
    pins.note_write("k1")  # not refreshed (this process set it 4.9 s ago) ...
    clock.now += 4.9
    assert pins.pinned("k1")  # ... yet still pinned 4.9 s after this write
    clock.now += 0.3
    assert not pins.pinned("k1")


def test_a_client_writing_all_the_time_costs_one_redis_write_per_window_and_process():
    clock = Clock()
    cache = FakeCache(clock)
    pins = WritePins(window=5, cache=cache, clock=clock)
    for _ in range(1000):  # 100 writes a second for 10 s
        pins.note_write("k1")
        clock.now += 0.01
    assert cache.sets == 2
    assert pins.pinned("k1")


def test_a_pin_that_cannot_be_read_sends_the_read_to_the_primary():
    pins = WritePins(window=5, cache=BrokenCache())
    pins.note_write("k1")  # logged, not raised
    assert pins.pinned("k1")


def _view(calls):
    def get(self, request):
        on_replica = dbrouter._replica_reads.get()
        calls.append("replica" if on_replica else "primary")
        if on_replica and request.replica_down:
            raise OperationalError("connection refused")
        return calls[-1]

    return reads_from_replica(get)


@pytest.fixture
def pins(monkeypatch):
    clock = Clock()
    pins = WritePins(window=5, cache=FakeCache(clock), clock=clock)
    monkeypatch.setattr(dbrouter, "write_pins", lambda: pins)
    return pins


def test_a_list_view_reads_from_the_replica_unless_its_client_wrote(pins, monkeypatch):
    monkeypatch.setattr(dbrouter, "_replica_failed_at", float("-inf"))
    calls = []
    view = _view(calls)
    assert view(None, SimpleNamespace(auth=SimpleNamespace(pk=1), replica_down=False)) == "replica"
    pins.note_write("k1")
    assert view(None, SimpleNamespace(auth=SimpleNamespace(pk=1), replica_down=False)) == "primary"
    assert view(None, SimpleNamespace(auth=SimpleNamespace(pk=2), replica_down=False)) == "replica"


def test_a_list_view_falls_back_to_the_primary_when_the_replica_is_down(pins, monkeypatch):
    monkeypatch.setattr(dbrouter, "_replica_failed_at", float("-inf"))
    calls = []
    view = _view(calls)
    assert view(None, SimpleNamespace(auth=SimpleNamespace(pk=1), replica_down=True)) == "primary"
    assert calls == ["replica", "primary"]
    assert view(None, SimpleNamespace(auth=SimpleNamespace(pk=1), replica_down=True)) == "primary"
    assert calls == ["replica", "primary", "primary"], "the failed replica is not tried again at once"
    monkeypatch.setattr(dbrouter, "_replica_failed_at", dbrouter._replica_failed_at - dbrouter.REPLICA_RETRY_AFTER)
    assert view(None, SimpleNamespace(auth=SimpleNamespace(pk=1), replica_down=False)) == "replica"


def test_without_a_replica_nothing_is_routed():
    assert dbrouter.write_pins() is None  # the test settings have no DATABASE_REPLICA_URL
    calls = []
    assert _view(calls)(None, SimpleNamespace(auth=SimpleNamespace(pk=1), replica_down=True)) == "primary"
