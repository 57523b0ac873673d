from notifier.channels.base import Message, Provider, ProviderError
from notifier.channels.failover import send_with_failover


class Scripted(Provider):
    def __init__(self, name, script):
        self.name, self.script, self.calls = name, script, []

    def send(self, message):
        self.calls.append(message.to)
        outcome = self.script(message)
        if isinstance(outcome, ProviderError):
            raise outcome
        return outcome


def _messages(*addresses):
    return [Message(notification_id=str(i), channel="email", to=a) for i, a in enumerate(addresses)]


def test_transient_error_moves_on_to_the_next_provider():
    first = Scripted("relay1", lambda m: ProviderError("down"))
    second = Scripted("relay2", lambda m: f"id-{m.to}")
    [outcome] = send_with_failover([first, second], _messages("a@x.io"))
    assert outcome.ok and outcome.provider == "relay2" and outcome.message_id == "id-a@x.io"
    assert [name for name, _ in outcome.path] == ["relay1", "relay2"]


def test_permanent_error_stops_failover():
    first = Scripted("relay1", lambda m: ProviderError("no such user", permanent=True))
    second = Scripted("relay2", lambda m: "never")
    [outcome] = send_with_failover([first, second], _messages("a@x.io"))
    assert not outcome.ok and outcome.error.permanent and second.calls == []


def test_outcomes_keep_message_order_and_only_failed_ones_fail_over():
    first = Scripted("p1", lambda m: "ok" if m.to != "b" else ProviderError("busy"))
    second = Scripted("p2", lambda m: "ok2")
    outcomes = send_with_failover([first, second], _messages("a", "b", "c"))
    assert [o.provider for o in outcomes] == ["p1", "p2", "p1"]
    assert second.calls == ["b"]


def test_all_providers_failing_transiently_reports_the_last_error():
    outcomes = send_with_failover(
        [Scripted("p1", lambda m: ProviderError("e1")), Scripted("p2", lambda m: ProviderError("e2"))],
        _messages("a"),
    )
    assert outcomes[0].provider == "p2" and outcomes[0].error.message == "e2" and not outcomes[0].error.permanent
