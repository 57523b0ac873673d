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


def test_memory_growth_is_measured_from_the_end_of_the_warm_up():
    from notifier.bench import rss_growth

    timeline = [(5.0, {"api": 100.0}), (30.0, {"api": 200.0}), (60.0, {"api": 210.0}), (90.0, {"api": 205.0})]

    growth = rss_growth(timeline, warmup=30.0)["api"]

    assert growth["start_mb"] == 200.0 and growth["at_s"] == 30.0  # the warm-up (100 -> 200 MB) is left out
    assert growth["end_mb"] == 205.0 and growth["max_mb"] == 210.0
    assert round(growth["growth_pct"], 1) == 2.5
    assert rss_growth([], warmup=30.0) == {}


def test_a_real_client_http_exchange_over_the_lean_load_connection():
    import asyncio
    import json

    from notifier.bench import _Connection

    async def exchange():
        seen = []

        async def serve(reader, writer):
            for _ in range(2):  # two requests on one keep-alive connection
                head = await reader.readuntil(b"\r\n\r\n")
                length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")][0])
                seen.append((head.split(b"\r\n")[0], json.loads(await reader.readexactly(length))))
                body = b'{"id": "x", "status": "queued"}'
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = _Connection(f"http://127.0.0.1:{port}", "k3y")
        answers = [await conn.post("/api/v1/notifications/email/", json.dumps({"n": n}).encode()) for n in (1, 2)]
        conn.close()
        server.close()
        await server.wait_closed()
        return seen, answers

    seen, answers = asyncio.run(exchange())

    assert [s[0] for s in seen] == [b"POST /api/v1/notifications/email/ HTTP/1.1"] * 2
    assert [s[1] for s in seen] == [{"n": 1}, {"n": 2}]
    assert answers == [(202, b'{"id": "x", "status": "queued"}')] * 2
