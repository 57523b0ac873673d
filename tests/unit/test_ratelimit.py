"""Token buckets in Redis (notifier.ratelimit) with an injected clock."""
import uuid

import pytest
import redis
from django.conf import settings

from notifier.ratelimit import ALLOWED, HELD, REFUSED, ApiDecision, ApiRateLimiter, CapItem, CapLimiter


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def client():
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def ns():
    return f"t-{uuid.uuid4().hex[:8]}"


def test_api_bucket_allows_the_burst_then_refills_at_the_rate(client, ns):
    clock = Clock()
    limiter = ApiRateLimiter(client, clock=clock, namespace=ns)
    decisions = [limiter.hit("k1", rate=2, burst=3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[3].retry_after == pytest.approx(0.5, abs=0.002)

    clock.t += 0.5  # one token back at 2/s
    assert limiter.hit("k1", rate=2, burst=3).allowed
    assert not limiter.hit("k1", rate=2, burst=3).allowed

    clock.t += 100  # never more than the burst
    assert [limiter.hit("k1", rate=2, burst=3).allowed for _ in range(4)] == [True, True, True, False]


def test_api_bucket_is_per_key_and_revocation_wins(client, ns):
    limiter = ApiRateLimiter(client, clock=Clock(), namespace=ns)
    assert limiter.hit("a", rate=1, burst=1).allowed
    assert not limiter.hit("a", rate=1, burst=1).allowed
    assert limiter.hit("b", rate=1, burst=1).allowed

    limiter.mark_revoked("b")
    decision = limiter.hit("b", rate=0, burst=1)
    assert decision.revoked and not decision.allowed
    limiter.clear_revoked("b")
    assert limiter.hit("b", rate=0, burst=1).allowed  # rate 0: unlimited


def test_api_bucket_uses_redis_time_without_an_injected_clock(client, ns):
    limiter = ApiRateLimiter(client, namespace=ns)
    assert [limiter.hit("k", rate=0.001, burst=2).allowed for _ in range(3)] == [True, True, False]


def test_cap_suppresses_past_the_capacity_and_refills_over_the_period(client, ns):
    clock = Clock()
    caps = CapLimiter(client, clock=clock, namespace=ns)
    item = CapItem(bucket="marketing:r1", capacity=3, period=86400)
    assert [d.code for d in caps.hit_many([item] * 4)] == [ALLOWED, ALLOWED, ALLOWED, REFUSED]

    clock.t += 86400 / 3  # one slot back
    assert [d.code for d in caps.hit_many([item, item])] == [ALLOWED, REFUSED]
    assert caps.hit_many([CapItem(bucket="marketing:r2", capacity=3, period=86400)])[0].code == ALLOWED


def test_cap_hold_gives_each_held_item_the_next_free_slot(client, ns):
    caps = CapLimiter(client, clock=Clock(), namespace=ns)
    item = CapItem(bucket="otp:r1", capacity=2, period=60, mode="hold", max_hold=1000)
    decisions = caps.hit_many([item] * 5)
    assert [d.code for d in decisions] == [ALLOWED, ALLOWED, HELD, HELD, HELD]
    assert [round(d.wait, 2) for d in decisions[2:]] == [30.0, 60.0, 90.0]  # one slot per 30 s


def test_cap_hold_beyond_the_longest_hold_is_refused(client, ns):
    caps = CapLimiter(client, clock=Clock(), namespace=ns)
    item = CapItem(bucket="otp:r2", capacity=1, period=60, mode="hold", max_hold=90)
    decisions = caps.hit_many([item] * 4)
    assert [d.code for d in decisions] == [ALLOWED, HELD, REFUSED, REFUSED]
    assert round(decisions[1].wait, 2) == 60.0


def test_cap_rejects_an_empty_capacity(client, ns):
    with pytest.raises(ValueError):
        CapLimiter(client, namespace=ns).hit_many([CapItem(bucket="x", capacity=0, period=60)])


def test_api_hit_many_decides_in_order_in_one_round_trip_once_the_script_is_loaded(client, ns, monkeypatch):
    limiter = ApiRateLimiter(client, clock=Clock(), namespace=ns)
    limiter.hit("warm", rate=1, burst=1)  # loads the script
    immediate = []
    real = redis.client.Pipeline.immediate_execute_command
    monkeypatch.setattr(redis.client.Pipeline, "immediate_execute_command",
                        lambda self, *args, **kw: immediate.append(args[0]) or real(self, *args, **kw))
    decisions = limiter.hit_many([("a", 1, 2), ("a", 1, 2), ("a", 1, 2), ("b", 1, 2)])
    assert [d.allowed for d in decisions] == [True, True, False, True]
    assert immediate == []  # no SCRIPT EXISTS before the calls


def test_api_hit_many_loads_a_missing_script_and_charges_each_request_once(client, ns):
    limiter = ApiRateLimiter(client, clock=Clock(), namespace=ns)
    # A script text Redis has never seen stands in for a restarted or flushed Redis: NOSCRIPT.
    limiter._script = client.register_script(limiter._script.script + f"\n-- {ns}")
    assert not client.script_exists(limiter._script.sha)[0]
    decisions = limiter.hit_many([("a", 1, 2), ("a", 1, 2), ("a", 1, 2), ("b", 1, 2)])
    assert [d.allowed for d in decisions] == [True, True, False, True]
    assert client.script_exists(limiter._script.sha)[0]
    assert not limiter.hit("a", rate=1, burst=2).allowed  # two tokens taken, not four
    assert [limiter.hit("b", rate=1, burst=2).allowed for _ in range(2)] == [True, False]


def test_api_hit_many_gives_the_decisions_and_bucket_of_one_call_per_request(client, ns):
    """One script call per key (with the count of its requests) decides as the calls one by one would."""
    clock = Clock()
    many = ApiRateLimiter(client, clock=clock, namespace=ns)
    one = ApiRateLimiter(client, clock=clock, namespace=ns + "-one")
    items = [("a", 2, 3)] * 5 + [("b", 1, 1), ("a", 2, 3), ("b", 1, 1), ("c", 0, 4), ("c", 0, 4)]
    for step in range(3):
        expected = [one.hit(key, rate=rate, burst=burst) for key, rate, burst in items]
        assert many.hit_many(items) == expected
        clock.t += 1.25  # a partial refill between rounds
    many.mark_revoked("b")
    assert many.hit_many([("b", 1, 1), ("b", 1, 1)]) == [ApiDecision(allowed=False, revoked=True)] * 2


def test_api_hit_many_of_one_key_loads_a_missing_script_and_charges_each_request_once(client, ns):
    limiter = ApiRateLimiter(client, clock=Clock(), namespace=ns)
    limiter._script = client.register_script(limiter._script.script + f"\n-- one key {ns}")
    assert not client.script_exists(limiter._script.sha)[0]
    assert [d.allowed for d in limiter.hit_many([("a", 1, 2)] * 3)] == [True, True, False]
    assert client.script_exists(limiter._script.sha)[0]
    assert not limiter.hit("a", rate=1, burst=2).allowed  # two tokens taken, not four
