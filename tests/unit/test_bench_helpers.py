"""Pure parts of notifier.bench: percentiles and /proc sampling."""
import os

from notifier.bench import ProcSampler, percentile, summarize


def test_percentile_is_nearest_rank_and_none_when_empty():
    values = list(range(1, 101))  # 1..100

    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0


def test_summarize_reports_count_percentiles_and_max():
    summary = summarize([0.3, 0.1, 0.2])

    assert summary == {"n": 3, "p50": 0.2, "p95": 0.3, "p99": 0.3, "max": 0.3}


def test_the_sampler_counts_its_own_process_as_bench_and_sees_its_cpu_time_grow():
    sampler = ProcSampler(root="/nonexistent", database="none")
    before = sampler.sample()
    sum(i * i for i in range(300_000))  # burn some CPU
    after = sampler.sample()

    delta = sampler.delta(before, after)
    assert before.groups[os.getpid()] == "bench"
    assert delta["bench"]["processes"] == 1
    assert delta["bench"]["cpu_seconds"] >= 0
    assert delta["bench"]["rss_mb_end"] > 0
