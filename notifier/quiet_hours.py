"""Quiet hours: a daily local-time window (it may cross midnight) when non-urgent messages wait."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_known_timezone(name: str) -> bool:
    return name in known_timezones()


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def release_time(now: datetime, tz_name: str, start: time, end: time) -> datetime | None:
    """When the quiet window that contains ``now`` ends (aware UTC), or None when ``now`` is outside it.

    The window is ``[start, end)`` in the local time of ``tz_name``; when
    ``start > end`` it crosses midnight (22:00–07:00). ``start == end`` is no
    window. An unknown time zone is treated as UTC.
    """
    if start == end:
        return None
    zone = _zone(tz_name or "UTC")
    local = now.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:
        if not (start <= t < end):
            return None
        end_date = today
    elif t >= start:
        end_date = today + timedelta(days=1)
    elif t < end:
        end_date = today
    else:
        return None
    # A window's times are wall-clock times: a fold they carry (hypothesis makes such times) would pick
    # the later offset for a time a DST change skips, which lands an hour before the window ends.
    local_release = datetime.combine(end_date, end.replace(fold=0), tzinfo=zone)
    release = local_release.astimezone(timezone.utc)
    if release <= now:  # a wall-clock time that occurs twice (DST ends) and ``now`` is in its second run
        release = local_release.replace(fold=1).astimezone(timezone.utc)
    return release if release > now else None


def format_window(start: time, end: time) -> str:
    return f"{start:%H:%M}–{end:%H:%M}"
