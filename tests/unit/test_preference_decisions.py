"""Preference decisions (pure): opt-outs, their precedence, and quiet hours."""
from datetime import datetime, time
from zoneinfo import ZoneInfo

from notifier.preferences import decide

NY = ZoneInfo("America/New_York")
NIGHT = datetime(2026, 1, 15, 23, 0, tzinfo=NY)
NOON = datetime(2026, 1, 15, 12, 0, tzinfo=NY)


def run(preferences=None, *, channel="email", category="marketing", allow_opt_out=True, quiet_hours_apply=True,
        quiet=(time(22), time(7)), now=NOON):
    return decide(channel=channel, category=category, allow_opt_out=allow_opt_out,
                  quiet_hours_apply=quiet_hours_apply, preferences=preferences or {}, quiet_hours=quiet,
                  timezone="America/New_York", now=now)


def test_nothing_set_allows():
    assert run().allowed


def test_a_category_opt_out_suppresses_that_category_on_that_channel_only():
    preferences = {("marketing", "email"): False}
    assert run(preferences).suppress == "recipient opted out of email for marketing"
    assert run(preferences, channel="sms").allowed
    assert run(preferences, category="transactional").allowed


def test_the_most_specific_preference_wins():
    assert run({(None, "email"): False, ("marketing", "email"): True}).allowed
    assert run({(None, "email"): True, ("marketing", "email"): False}).suppress
    assert run({(None, "email"): False}).suppress == "recipient opted out of email"


def test_a_category_without_opt_out_ignores_every_opt_out():
    assert run({(None, "email"): False, ("otp", "email"): False}, category="otp", allow_opt_out=False,
               quiet_hours_apply=False, now=NIGHT).allowed


def test_quiet_hours_hold_only_categories_they_apply_to():
    held = run(now=NIGHT)
    assert held.hold_until == datetime(2026, 1, 16, 7, 0, tzinfo=NY)
    assert "quiet hours 22:00–07:00 America/New_York" in held.detail
    assert run(now=NIGHT, quiet_hours_apply=False).allowed
    assert run(now=NIGHT, quiet=None).allowed


def test_an_opt_out_suppresses_rather_than_holds():
    decision = run({("marketing", "email"): False}, now=NIGHT)
    assert decision.suppress and decision.hold_until is None
