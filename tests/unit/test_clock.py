"""The movable policy clock (pure)."""
from datetime import datetime, timedelta, timezone

import pytest

from notifier import clock


@pytest.fixture(autouse=True)
def _reset():
    clock.reset()
    yield
    clock.reset()


def test_it_reads_the_real_utc_time_unless_moved():
    assert not clock.is_moved()
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=1)
    assert clock.now().tzinfo == timezone.utc


def test_freeze_stops_it_and_reset_restores_it():
    at = datetime(2026, 1, 16, 4, 0, tzinfo=timezone.utc)
    clock.freeze(at)
    assert clock.now() == at
    assert clock.is_moved()
    clock.reset()
    assert clock.now() > at + timedelta(days=30)


def test_an_offset_shifts_it_and_it_keeps_ticking():
    target = datetime.now(timezone.utc) + timedelta(days=40)
    clock.set_offset(clock.offset_to(target))
    first = clock.now()
    assert abs(first - target) < timedelta(seconds=1)
    assert clock.now() >= first


def test_travel_moves_it_for_a_block_only():
    target = datetime(2030, 5, 1, 12, tzinfo=timezone.utc)
    with clock.travel(target):
        assert abs(clock.now() - target) < timedelta(seconds=1)
    assert not clock.is_moved()


def test_it_refuses_naive_times():
    with pytest.raises(ValueError):
        clock.freeze(datetime(2026, 1, 1))
