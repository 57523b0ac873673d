"""The clock policy decisions read (quiet hours, holds).

``now()`` is the real UTC time unless a test moved it: ``freeze(at)`` stops
it at ``at``; ``set_offset(seconds)`` shifts it while it keeps ticking (what
worker processes get from ``NOTIFIER_TEST_CLOCK_OFFSET`` in
``config.settings.test``; production settings never read that variable);
``reset()`` puts it back. ``travel(at)`` is a context manager that shifts the
clock to ``at`` (still ticking) for a block.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

_offset = timedelta(0)
_frozen: datetime | None = None


def real_now() -> datetime:
    return datetime.now(timezone.utc)


def now() -> datetime:
    """The current time (aware, UTC) as the policy checks see it."""
    if _frozen is not None:
        return _frozen
    return real_now() + _offset


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("the clock takes aware datetimes")
    return at.astimezone(timezone.utc)


def freeze(at: datetime) -> None:
    global _frozen
    _frozen = _aware(at)


def set_offset(offset: float | timedelta) -> None:
    global _offset, _frozen
    _frozen = None
    _offset = offset if isinstance(offset, timedelta) else timedelta(seconds=float(offset))


def offset_to(at: datetime) -> timedelta:
    """The offset that makes ``now()`` read ``at`` at this moment."""
    return _aware(at) - real_now()


def reset() -> None:
    global _offset, _frozen
    _offset, _frozen = timedelta(0), None


def is_moved() -> bool:
    return _frozen is not None or _offset != timedelta(0)


@contextmanager
def travel(at: datetime):
    """Within the block, the clock reads ``at`` and keeps ticking from there."""
    saved = (_offset, _frozen)
    set_offset(offset_to(at))
    try:
        yield
    finally:
        _restore(saved)


def _restore(saved) -> None:
    global _offset, _frozen
    _offset, _frozen = saved
