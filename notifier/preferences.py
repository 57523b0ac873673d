"""Whether a recipient's preferences let a notification go now: pure decision logic.

``decide`` takes everything as plain values so the callers can load the data
for a whole chunk in one query.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from .quiet_hours import format_window, release_time

# (category slug or None, channel) -> enabled
PreferenceMap = dict[tuple[str | None, str], bool]


@dataclass(frozen=True)
class Decision:
    suppress: str = ""  # the reason, when opted out
    hold_until: datetime | None = None  # when quiet hours end, when held
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return not self.suppress and self.hold_until is None


ALLOW = Decision()


def opted_out(channel: str, category: str, preferences: PreferenceMap) -> str:
    """The reason the recipient does not want this, or "" (the most specific preference wins)."""
    specific = preferences.get((category, channel))
    if specific is not None:
        return "" if specific else f"recipient opted out of {channel} for {category}"
    general = preferences.get((None, channel))
    if general is not None and not general:
        return f"recipient opted out of {channel}"
    return ""


def decide(*, channel: str, category: str, allow_opt_out: bool, quiet_hours_apply: bool,
           preferences: PreferenceMap, quiet_hours: tuple[time, time] | None, timezone: str,
           now: datetime) -> Decision:
    if allow_opt_out:
        reason = opted_out(channel, category, preferences)
        if reason:
            return Decision(suppress=reason, detail=f"suppressed: {reason}")
    if quiet_hours_apply and quiet_hours:
        start, end = quiet_hours
        until = release_time(now, timezone, start, end)
        if until is not None:
            return Decision(hold_until=until, detail=(
                f"held for quiet hours {format_window(start, end)} {timezone} until {until.isoformat()}"))
    return ALLOW
