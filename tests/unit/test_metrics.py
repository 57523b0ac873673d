"""Metric helpers: batch-shaped increments and breaker state collection."""
import pytest

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


def test_it_takes_notifications_already_counted():
    before = _count(metrics.NOTIFICATIONS, "email", "sending")
    before_low = _count(metrics.NOTIFICATION_STATUS, "email", "marketing", "low", "sending")
    metrics.notifications_entered({("email", "marketing", "low", "sending"): 700,
                                   ("email", "otp", "high", "sending"): 300})
    assert _count(metrics.NOTIFICATIONS, "email", "sending") - before == 1000
    assert _count(metrics.NOTIFICATION_STATUS, "email", "marketing", "low", "sending") - before_low == 700


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



def _histogram_samples(histogram):
    """{(suffix, le): value} of one labelled histogram child (the names differ between the two compared)."""
    return {(s.name.rsplit("_", 1)[1], s.labels.get("le")): s.value
            for metric in histogram.collect() for s in metric.samples if not s.name.endswith("_created")}


def test_observe_many_gives_the_buckets_count_and_sum_of_one_observe_per_value():
    from prometheus_client import Histogram

    # Own names: in multiprocess mode (the test settings) values are keyed by metric name and labels.
    one_by_one = Histogram("test_one_by_one_seconds", "x", buckets=metrics.LATENCY_BUCKETS, registry=None)
    at_once = Histogram("test_at_once_seconds", "x", buckets=metrics.LATENCY_BUCKETS, registry=None)
    # Bounds themselves (a value equal to a bound is in that bucket), between bounds, zero, above the last bound.
    amounts = [(0.0, 3), (0.05, 2), (0.051, 1), (1.0, 4), (2.7, 1), (3600.0, 1), (5000.0, 2), (0.3, 1000)]
    for amount, count in amounts:
        for _ in range(count):
            one_by_one.observe(amount)
    metrics.observe_many(at_once, amounts)

    expected, got = _histogram_samples(one_by_one), _histogram_samples(at_once)
    assert got.keys() == expected.keys()
    assert expected[("count", None)] == 1014
    for key, value in expected.items():
        assert got[key] == pytest.approx(value) if key[0] == "sum" else got[key] == value, key


def test_latency_is_observed_per_priority_from_creation_to_sending():
    from datetime import datetime, timedelta, timezone

    def samples(priority):
        return {(s.name.rsplit("_", 1)[1], s.labels.get("le")): s.value
                for m in metrics.LATENCY.collect() for s in m.samples if s.labels.get("priority") == priority}

    def delta(after, before, key):
        return after.get(key, 0) - before.get(key, 0)

    sent = datetime(2026, 1, 1, tzinfo=timezone.utc)
    before_high, before_low = samples("high"), samples("low")
    metrics.latency_observed(
        [("high", sent - timedelta(seconds=0.2), sent)] * 5
        + [("high", sent - timedelta(seconds=7), sent), ("low", sent + timedelta(seconds=1), sent),  # skew: 0 s
           ("low", None, sent)])
    high, low = samples("high"), samples("low")
    assert delta(high, before_high, ("bucket", "0.1")) == 0
    assert delta(high, before_high, ("bucket", "0.25")) == 5
    assert delta(high, before_high, ("bucket", "10.0")) == 6
    assert delta(high, before_high, ("count", None)) == 6
    assert delta(high, before_high, ("sum", None)) == pytest.approx(8.0)
    assert delta(low, before_low, ("bucket", "0.05")) == 1
    assert delta(low, before_low, ("count", None)) == 1
