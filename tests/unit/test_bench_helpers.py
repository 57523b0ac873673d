"""Pure parts of notifier.bench: percentiles, /proc sampling, the load spread over processes."""
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


def test_memory_growth_is_measured_from_the_end_of_the_warm_up():
    from notifier.bench import rss_growth

    timeline = [(5.0, {"api": 100.0}), (30.0, {"api": 200.0}), (60.0, {"api": 210.0}), (90.0, {"api": 205.0})]

    growth = rss_growth(timeline, warmup=30.0)["api"]

    assert growth["start_mb"] == 200.0 and growth["at_s"] == 30.0  # the warm-up (100 -> 200 MB) is left out
    assert growth["end_mb"] == 205.0 and growth["max_mb"] == 210.0
    assert round(growth["growth_pct"], 1) == 2.5
    assert rss_growth([], warmup=30.0) == {}


def test_the_load_is_split_over_processes_in_proportion_to_their_clients():
    from notifier.bench import LoadConfig, split_config

    cfg = LoadConfig(url="http://x", api_key="k", mode="single", clients=7, rate=700.0, high_rate=14.0, limit=70)

    parts = split_config(cfg, 3, start_at=123.0)

    assert [p.clients for p in parts] == [3, 2, 2]
    assert [p.rate for p in parts] == [300.0, 200.0, 200.0] and sum(p.high_rate for p in parts) == 14.0
    assert [p.limit for p in parts] == [30, 20, 20] and {p.start_at for p in parts} == {123.0}
    assert [p.clients for p in split_config(cfg, 10, start_at=0.0)] == [1] * 7  # no process without a client
    assert split_config(LoadConfig(url="http://x", api_key="k", clients=4), 2, start_at=0.0)[0].limit == 0


def test_the_results_of_the_processes_add_up():
    from notifier.bench import LoadResult, merge_results

    first, second = LoadResult(started=10.0, ended=40.0), LoadResult(started=9.5, ended=41.0)
    first.accepted, first.requests, first.client_cpu_s = 100, 100, 1.5
    second.accepted, second.requests, second.rejected_items, second.client_cpu_s = 50, 60, 10, 0.5
    first.latencies["single"] += [0.1, 0.2]
    second.latencies["single"] += [0.3]
    second.errors["HTTP 500"] += 1

    merged = merge_results([first, second])

    assert (merged.started, merged.ended, merged.processes) == (9.5, 41.0, 2)
    assert (merged.accepted, merged.requests, merged.rejected_items, merged.client_cpu_s) == (150, 160, 10, 2.0)
    assert sorted(merged.latencies["single"]) == [0.1, 0.2, 0.3] and merged.errors == {"HTTP 500": 1}
