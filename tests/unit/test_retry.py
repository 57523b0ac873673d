from notifier.retry import MAX_RETRIES, Backoff, should_retry


def test_backoff_doubles_per_retry_within_jitter_bounds():
    backoff = Backoff(base=10, cap=300)
    for retry in (1, 2, 3):
        expected = 10 * 2 ** (retry - 1)
        assert backoff.delay(retry, rand=lambda: 0.0) == expected * 0.75
        assert backoff.delay(retry, rand=lambda: 1.0) == expected * 1.25


def test_backoff_is_capped():
    assert Backoff(base=10, cap=300).delay(10, rand=lambda: 1.0) == 300


def test_provider_retry_after_is_a_floor_but_still_capped():
    backoff = Backoff(base=1, cap=60)
    assert backoff.delay(1, retry_after=30, rand=lambda: 0.5) == 30
    assert backoff.delay(1, retry_after=600, rand=lambda: 0.5) == 60


def test_three_retries_make_four_attempts():
    assert MAX_RETRIES == 3
    assert [should_retry(n) for n in (1, 2, 3, 4)] == [True, True, True, False]
