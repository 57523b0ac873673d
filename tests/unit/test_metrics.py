"""Metric helpers: batch-shaped increments and breaker state collection."""
from notifier import metrics


def _count(metric, *labels):
    return metric.labels(*labels)._value.get()


def test_it_counts_notifications_entering_a_status_by_counts():
    before_sent = _count(metrics.NOTIFICATIONS, "sms", "sent")
    before_failed = _count(metrics.NOTIFICATIONS, "sms", "failed")
    before_otp = _count(metrics.NOTIFICATION_STATUS, "sms", "otp", "high", "sent")
    metrics.notifications_entered(
        [("sms", "otp", "high", "sent")] * 3 + [("sms", "marketing", "low", "sent"), ("sms", "otp", "high", "failed")])
    assert _count(metrics.NOTIFICATIONS, "sms", "sent") - before_sent == 4
    assert _count(metrics.NOTIFICATIONS, "sms", "failed") - before_failed == 1
    assert _count(metrics.NOTIFICATION_STATUS, "sms", "otp", "high", "sent") - before_otp == 3


def test_it_counts_each_provider_call_of_a_failover_path():
    before = {o: _count(metrics.ATTEMPTS, "push", p, o) for p, o in
              [("fcm", "transient_error"), ("console", "accepted"), ("fcm", "permanent_error")]}
    metrics.attempts_made("push", [
        ([("fcm", "503 unavailable"), ("console", "accepted")], True, False),
        ([("fcm", "unregistered")], False, True),
    ])
    assert _count(metrics.ATTEMPTS, "push", "fcm", "transient_error") - before["transient_error"] == 1
    assert _count(metrics.ATTEMPTS, "push", "console", "accepted") - before["accepted"] == 1
    assert _count(metrics.ATTEMPTS, "push", "fcm", "permanent_error") - before["permanent_error"] == 1


def test_it_reads_breaker_states_from_registered_sources_and_survives_a_broken_one():
    def broken():
        raise RuntimeError("redis down")

    def good():
        return {"twilio": "open", "smtp": "closed"}

    metrics.register_breaker_source(broken)
    metrics.register_breaker_source(good)
    try:
        states = metrics.breaker_states()
    finally:
        metrics._breaker_sources.remove(broken)
        metrics._breaker_sources.remove(good)
    assert states["twilio"] == "open"
    assert states["smtp"] == "closed"
