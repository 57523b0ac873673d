"""Failover across providers (pure: scripted providers, a scripted breaker)."""
from notifier.channels.base import Message, Provider, ProviderError
from notifier.channels.failover import send_with_failover
from notifier.circuit import Permit


class Scripted(Provider):
    channel = "email"

    def __init__(self, name, behaviour="ok", platforms=None):
        self.name = name
        self.behaviour = behaviour  # "ok", "transient", "permanent"
        self.platforms = platforms
        self.calls: list[list[str]] = []

    def accepts(self, message):
        return self.platforms is None or message.platform in self.platforms

    def send_many(self, messages):
        self.calls.append([m.to for m in messages])
        if self.behaviour == "ok":
            return [f"{self.name}-{m.to}" for m in messages]
        return [ProviderError(f"{self.name} {self.behaviour}", permanent=self.behaviour == "permanent")
                for m in messages]


class Breaker:
    def __init__(self, permits=None):
        self.permits = permits or {}
        self.recorded = []

    def permit(self, channel, provider):
        return self.permits.get(provider, Permit(True))

    def record(self, channel, provider, outcomes, last_error=""):
        self.recorded.append((provider, list(outcomes)))


def _messages(n=2, platform=""):
    return [Message(notification_id=str(i), channel="email", to=f"u{i}@example.com", platform=platform)
            for i in range(n)]


def test_it_moves_to_the_next_provider_on_a_transient_error_and_keeps_the_path():
    first, second = Scripted("smtp", "transient"), Scripted("smtp2")
    outcomes = send_with_failover([first, second], _messages())
    assert [o.provider for o in outcomes] == ["smtp2", "smtp2"]
    assert all(o.ok for o in outcomes)
    assert outcomes[0].describe() == "smtp: smtp transient (transient); smtp2: accepted"


def test_a_permanent_error_stops_at_the_first_provider():
    first, second = Scripted("smtp", "permanent"), Scripted("smtp2")
    outcomes = send_with_failover([first, second], _messages())
    assert all(o.error and o.error.permanent for o in outcomes)
    assert second.calls == []


def test_an_open_circuit_is_skipped_without_a_call():
    first, second = Scripted("smtp"), Scripted("smtp2")
    breaker = Breaker({"smtp": Permit(False, retry_at=1000.0)})
    outcomes = send_with_failover([first, second], _messages(), breaker=breaker)
    assert first.calls == []
    assert [o.provider for o in outcomes] == ["smtp2", "smtp2"]
    assert "circuit open" in outcomes[0].describe()


def test_when_every_circuit_is_open_nothing_is_attempted_and_the_wait_ends_at_the_earliest_half_open():
    breaker = Breaker({"smtp": Permit(False, retry_at=2000.0), "smtp2": Permit(False, retry_at=1500.0)})
    outcomes = send_with_failover([Scripted("smtp"), Scripted("smtp2")], _messages(), breaker=breaker)
    assert all(o.circuit_wait and not o.attempted for o in outcomes)
    assert outcomes[0].retry_at == 1500.0
    assert not outcomes[0].error.permanent


def test_a_half_open_probe_sends_one_message_first():
    provider = Scripted("smtp")
    breaker = Breaker({"smtp": Permit(True, probe=True)})
    outcomes = send_with_failover([provider], _messages(3), breaker=breaker)
    assert provider.calls[0] == ["u0@example.com"]
    assert all(o.ok for o in outcomes)


def test_results_are_reported_to_the_breaker():
    breaker = Breaker()
    send_with_failover([Scripted("smtp", "transient"), Scripted("smtp2")], _messages(), breaker=breaker)
    assert breaker.recorded == [("smtp", [False, False]), ("smtp2", [True, True])]


def test_push_providers_take_only_their_platforms():
    fcm, webpush = Scripted("fcm", platforms={"android", "ios"}), Scripted("webpush", platforms={"web"})
    messages = [Message(notification_id="1", channel="push", to="a", platform="android"),
                Message(notification_id="1", channel="push", to="w", platform="web"),
                Message(notification_id="1", channel="push", to="i", platform="ios")]
    outcomes = send_with_failover([fcm, webpush], messages)
    assert [o.provider for o in outcomes] == ["fcm", "webpush", "fcm"]
    assert fcm.calls == [["a", "i"]] and webpush.calls == [["w"]]


def test_a_platform_no_provider_takes_fails_permanently():
    outcomes = send_with_failover([Scripted("fcm", platforms={"android"})],
                                  [Message(notification_id="1", channel="push", to="w", platform="web")])
    assert outcomes[0].error.permanent and outcomes[0].error.code == "no_provider"


def test_a_provider_that_raises_unexpectedly_counts_as_transient():
    class Broken(Provider):
        name, channel = "broken", "email"

        def send_many(self, messages):
            raise RuntimeError("bug")

    outcomes = send_with_failover([Broken(), Scripted("smtp2")], _messages(1))
    assert outcomes[0].ok and outcomes[0].provider == "smtp2"


class Malformed(Provider):
    """Refuses messages whose address has "bad" in it as unusable input; accepts the rest."""

    name = "smtp"
    channel = "email"

    def send_many(self, messages):
        return [ProviderError("header 'To' holds a control character", bad_input=True) if "bad" in m.to
                else f"ok-{m.to}" for m in messages]


class ProbingBreaker(Breaker):
    def __init__(self, permits=None):
        super().__init__(permits)
        self.released = []

    def release_probe(self, channel, provider):
        self.released.append(provider)


def test_a_bad_input_error_is_permanent_and_left_out_of_the_breakers_record():
    breaker = Breaker()
    messages = [Message(notification_id=str(i), channel="email", to=to)
                for i, to in enumerate(["bad1@example.com", "good@example.com", "bad2@example.com"])]
    outcomes = send_with_failover([Malformed(), Scripted("smtp2")], messages, breaker=breaker)
    assert [o.ok for o in outcomes] == [False, True, False]
    assert outcomes[0].error.permanent and outcomes[0].error.bad_input
    assert outcomes[0].path == [("smtp", str(outcomes[0].error))]  # not retried on smtp2
    assert breaker.recorded == [("smtp", [True])]  # only the message the provider actually judged


def test_a_half_open_probe_that_only_carried_bad_input_releases_the_probe():
    breaker = ProbingBreaker({"smtp": Permit(True, probe=True)})
    messages = [Message(notification_id="1", channel="email", to="bad@example.com")]
    send_with_failover([Malformed()], messages, breaker=breaker)
    assert breaker.recorded == [("smtp", [])]
    assert breaker.released == ["smtp"]
