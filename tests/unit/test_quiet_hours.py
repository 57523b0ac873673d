"""Quiet-hours windows in the recipient's time zone (pure)."""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.quiet_hours import is_known_timezone, release_time

NY = ZoneInfo("America/New_York")


def ny(*args) -> datetime:
    return datetime(*args, tzinfo=NY)


def test_it_holds_until_seven_the_next_morning_when_posted_at_23_local():
    release = release_time(ny(2026, 1, 15, 23, 0), "America/New_York", time(22), time(7))
    assert release == ny(2026, 1, 16, 7, 0)
    assert release.tzinfo == timezone.utc


def test_it_holds_until_seven_the_same_morning_after_midnight():
    assert release_time(ny(2026, 1, 16, 3, 30), "America/New_York", time(22), time(7)) == ny(2026, 1, 16, 7, 0)


def test_it_does_not_hold_outside_the_window_or_at_its_end():
    for hour in (7, 12, 21):
        assert release_time(ny(2026, 1, 16, hour, 0), "America/New_York", time(22), time(7)) is None
    assert release_time(ny(2026, 1, 16, 21, 59), "America/New_York", time(22), time(7)) is None


def test_it_holds_from_the_start_of_the_window():
    assert release_time(ny(2026, 1, 16, 22, 0), "America/New_York", time(22), time(7)) == ny(2026, 1, 17, 7, 0)


def test_a_window_within_one_day_holds_until_its_end():
    assert release_time(ny(2026, 1, 16, 13, 0), "America/New_York", time(12), time(14)) == ny(2026, 1, 16, 14)
    assert release_time(ny(2026, 1, 16, 14, 0), "America/New_York", time(12), time(14)) is None


def test_it_reads_the_window_in_the_recipients_time_zone_not_utc():
    # 23:00 in New York is 04:00 UTC: inside 22–07 in New York, outside it in Tokyo (13:00).
    at = ny(2026, 1, 15, 23, 0)
    assert release_time(at, "America/New_York", time(22), time(7)) is not None
    assert release_time(at, "Asia/Tokyo", time(22), time(7)) is None


def test_it_releases_at_local_seven_across_a_daylight_saving_change():
    # The night DST starts (2026-03-08) the release is 07:00 EDT = 11:00 UTC, not 12:00 UTC.
    release = release_time(ny(2026, 3, 7, 23, 0), "America/New_York", time(22), time(7))
    assert release == datetime(2026, 3, 8, 11, 0, tzinfo=timezone.utc)


def test_in_the_repeated_hour_when_dst_ends_it_releases_at_the_second_occurrence():
    # 2026-11-01 01:10 EST (06:10 UTC) comes after 01:00–02:00 EDT; the window ends at 01:30 EST = 06:30 UTC.
    now = datetime(2026, 11, 1, 6, 10, tzinfo=timezone.utc)
    assert release_time(now, "America/New_York", time(0), time(1, 30)) == datetime(2026, 11, 1, 6, 30,
                                                                                   tzinfo=timezone.utc)


def test_equal_start_and_end_is_no_window():
    assert release_time(ny(2026, 1, 15, 23, 0), "America/New_York", time(22), time(22)) is None


def test_it_knows_iana_time_zones_only():
    assert is_known_timezone("America/New_York")
    assert is_known_timezone("UTC")
    assert not is_known_timezone("Mars/Olympus_Mons")
    assert not is_known_timezone("../etc/passwd")


ZONES = ["America/New_York", "Europe/Lisbon", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham", "UTC"]


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(timezone.utc)),
    zone=st.sampled_from(ZONES),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_a_hold_always_ends_later_within_a_day_at_the_local_end_of_the_window(moment, zone, start, end):
    release = release_time(moment, zone, start, end)
    local = moment.astimezone(ZoneInfo(zone)).time().replace(tzinfo=None)
    if start < end:
        inside = start <= local < end
    else:
        inside = start > end and (local >= start or local < end)
    if not inside:
        assert release is None
        return
    assert release is not None
    assert moment < release <= moment + timedelta(hours=25)
    released_local = release.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    # The local end of the window, or just after it when that wall-clock time is skipped by a DST change.
    assert timedelta(0) <= released_local - datetime.combine(released_local.date(), end) <= timedelta(hours=1)


def test_a_window_end_skipped_by_dst_releases_just_after_it_whatever_the_fold_of_the_end_time():
    """New York skips 02:00-03:00 on 2024-03-10: a window ending at 02:00 ends at 03:00 EDT (07:00 UTC)."""
    moment = datetime(2024, 3, 10, 0, 0, tzinfo=timezone.utc)  # 19:00 EST the evening before
    for end in (time(2, 0), time(2, 0, fold=1)):
        assert release_time(moment, "America/New_York", time(2, 1), end) == datetime(2024, 3, 10, 7, 0,
                                                                                    tzinfo=timezone.utc)
