"""Circuit breakers with their state in the test's Redis database, and a movable clock."""
import pytest
import redis
from django.conf import settings

from notifier import circuit
from notifier.channels.base import Message, Provider, ProviderError
from notifier.channels.failover import send_with_failover
from notifier.circuit import CircuitBreaker


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker(redis.Redis.from_url(settings.REDIS_URL), threshold=3, cooldown=30, clock=clock)


def test_it_opens_after_threshold_consecutive_transient_failures(breaker, clock):
    breaker.record("email", "smtp", [False, False])
    assert breaker.permit("email", "smtp").allowed
    breaker.record("email", "smtp", [False])
    permit = breaker.permit("email", "smtp")
    assert not permit.allowed
    assert permit.retry_at == clock.now + 30
    assert breaker.state("email", "smtp")["state"] == "open"


def test_a_success_resets_the_count(breaker):
    breaker.record("email", "smtp", [False, False, True])
    breaker.record("email", "smtp", [False, False])
    assert breaker.permit("email", "smtp").allowed
    assert breaker.state("email", "smtp")["failures"] == 2


def test_permanent_errors_prove_the_provider_is_up(breaker):
    breaker.record("sms", "twilio", [False, False, None])
    assert breaker.state("sms", "twilio")["failures"] == 0


def test_after_the_cooldown_one_caller_probes_and_the_others_wait(breaker, clock):
    breaker.record("email", "smtp", [False] * 3)
    clock.now += 31
    first = breaker.permit("email", "smtp")
    second = breaker.permit("email", "smtp")
    assert first.allowed and first.probe
    assert not second.allowed and second.retry_at > clock.now
    assert breaker.state("email", "smtp")["state"] == "half_open"


def test_a_successful_probe_closes_it(breaker, clock):
    breaker.record("email", "smtp", [False] * 3)
    clock.now += 31
    assert breaker.permit("email", "smtp").probe
    breaker.record("email", "smtp", [True])
    assert breaker.state("email", "smtp")["state"] == "closed"
    assert breaker.permit("email", "smtp") == circuit.Permit(True)


def test_a_failed_probe_opens_it_for_another_cooldown(breaker, clock):
    breaker.record("email", "smtp", [False] * 3)
    clock.now += 31
    assert breaker.permit("email", "smtp").probe
    breaker.record("email", "smtp", [False])
    permit = breaker.permit("email", "smtp")
    assert not permit.allowed and permit.retry_at == clock.now + 30
    assert breaker.state("email", "smtp")["times_opened"] == 2


def test_state_is_shared_by_every_breaker_on_the_same_redis(breaker, clock):
    other = CircuitBreaker(redis.Redis.from_url(settings.REDIS_URL), threshold=3, cooldown=30, clock=clock)
    breaker.record("email", "smtp", [False] * 3)
    assert not other.permit("email", "smtp").allowed


def test_it_lets_everything_through_when_redis_is_unreachable(caplog):
    # A closed local port refuses at once; retry=None: redis-py's default retries (ten, with back-off) would
    # make each command take about 5 s to fail, which this test does not need to wait for.
    dead = CircuitBreaker(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=None),
                          threshold=1)
    assert dead.record("email", "smtp", [False]) == circuit.CLOSED
    assert dead.permit("email", "smtp").allowed
    unreachable = [r.getMessage() for r in caplog.records if "store unreachable" in r.getMessage()]
    assert unreachable == ["circuit breaker store unreachable; not recording email/smtp",
                           "circuit breaker store unreachable; letting email/smtp through"], unreachable


def test_states_lists_every_configured_provider(settings):
    settings.NOTIFIER_CIRCUIT_THRESHOLD = 3
    circuit.reset_breaker()
    circuit.breaker().record("email", "smtp2", [False] * 3, "connection refused")
    states = {(s["channel"], s["provider"]): s for s in
              circuit.states({"email": ["smtp", "smtp2"], "sms": ["twilio"], "in_app": ["inbox"]})}
    assert set(states) == {("email", "smtp"), ("email", "smtp2"), ("sms", "twilio")}
    assert states[("email", "smtp2")]["state"] == "open" and states[("email", "smtp2")]["value"] == 2
    assert states[("email", "smtp2")]["last_error"] == "connection refused"
    assert states[("email", "smtp")]["state"] == "closed" and states[("email", "smtp")]["value"] == 0


class Down(Provider):
    channel = "email"

    def __init__(self, name):
        self.name = name
        self.calls = 0

    def send_many(self, messages):
        self.calls += 1
        return [ProviderError("connection refused") for _ in messages]


def test_failover_stops_calling_a_provider_once_its_circuit_opens(breaker, clock):
    down = Down("smtp")
    message = [Message(notification_id="1", channel="email", to="a@example.com")]
    for _ in range(3):
        send_with_failover([down], message, breaker=breaker)
    outcomes = send_with_failover([down], message, breaker=breaker)
    assert down.calls == 3
    assert outcomes[0].circuit_wait and outcomes[0].retry_at == clock.now + 30


def test_a_soft_time_limit_inside_the_breaker_store_is_raised_not_taken_for_an_unreachable_store(clock):
    """The breaker fails open when Redis is unreachable; the task's soft time limit is no such error."""
    from celery.exceptions import SoftTimeLimitExceeded

    class Interrupted:
        def register_script(self, script):
            def run(**kwargs):
                raise SoftTimeLimitExceeded()
            return run

        def hget(self, *args):
            raise SoftTimeLimitExceeded()

    store = CircuitBreaker(Interrupted(), threshold=3, cooldown=30, clock=clock)
    with pytest.raises(SoftTimeLimitExceeded):
        store.permit("email", "smtp")
    with pytest.raises(SoftTimeLimitExceeded):
        store.record("email", "smtp", [False])
