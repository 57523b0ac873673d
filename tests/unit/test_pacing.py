"""Provider calls are sized to a time budget from the pace each channel has shown."""
from notifier.pacing import FIRST_CALL, Pace


def test_a_channels_first_call_is_small_until_its_pace_is_known():
    pace = Pace()
    assert pace.size("email", 1000, budget=6.0) == FIRST_CALL
    assert pace.size("email", 3, budget=6.0) == 3


def test_a_provider_that_answers_at_once_gets_the_whole_rest_in_one_call():
    pace = Pace()
    pace.observe("email", 10, 0.0001)  # 10 us a message
    assert pace.size("email", 990, budget=6.0) == 990
    pace.observe("sms", 10, 0.0)
    assert pace.size("sms", 990, budget=6.0) == 990


def test_a_slow_provider_gets_calls_sized_to_the_budget():
    pace = Pace()
    pace.observe("email", 10, 5.0)  # half a second a message
    assert pace.size("email", 1000, budget=6.0) == 12
    assert pace.size("email", 1000, budget=0.1) == 1  # never less than one
    assert pace.size("email", 1000, budget=-3.0) == 1  # past the deadline: still one
    assert pace.size("push", 1000, budget=6.0) == FIRST_CALL  # each channel its own pace


def test_a_slowdown_shrinks_the_next_call_at_once_and_a_recovery_grows_it_by_halves():
    pace = Pace()
    pace.observe("email", 10, 1.0)  # 0.1 s each
    assert pace.size("email", 1000, budget=6.0) == 60
    pace.observe("email", 60, 60.0)  # 1 s each: believed at once
    assert pace.size("email", 1000, budget=6.0) == 6
    pace.observe("email", 6, 0.6)  # 0.1 s each again: halfway back (0.55 s)
    assert pace.size("email", 1000, budget=6.0) == 10


def test_a_call_is_never_smaller_than_what_the_provider_sends_at_once():
    pace = Pace()
    assert pace.size("email", 1000, budget=6.0, floor=16) == 16
    pace.observe("email", 4, 4.0)
    assert pace.size("email", 1000, budget=0.5, floor=4) == 4
    assert pace.size("email", 2, budget=0.5, floor=4) == 2
