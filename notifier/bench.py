"""Load generation and measurement for ``manage.py bench`` (no Django here).

``run_load`` drives a running notifier through its HTTP API over keep-alive
HTTP/1.1 connections of one of ``bench_clients``' clients; ``run_load_processes``
spreads that load over processes and reports the client's CPU per request;
``ProcSampler`` reads CPU time and resident memory of each process group
from ``/proc``.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .bench_clients import CLIENTS, client_errors, connect, run_event_loop

MODES = ("single", "batch", "mixed")
_CLIENT_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]|::1\(\d+\)")


# --- statistics --------------------------------------------------------------------------

def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def summarize(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {"n": len(ordered), "p50": percentile(ordered, 50), "p95": percentile(ordered, 95),
            "p99": percentile(ordered, 99), "max": ordered[-1] if ordered else None}


# --- how fast this machine's CPU is right now ------------------------------------------------

_PROBE_DATA = [{"id": i, "name": "x" * 20, "values": list(range(20))} for i in range(300)]


def cpu_probe_ms(rounds: int = 15) -> float:
    """Milliseconds of a fixed piece of Python work (JSON and SHA-256), the best of ``rounds``.

    The CPU of a shared 2-core machine is not equally fast at all times: the same
    code measured 26 ms here in one hour and 40 ms in another, and a benchmark's
    figures move with it. The report carries the probe taken before and after
    the load so that runs can be compared (lower is faster).
    """
    import hashlib

    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(20):
            text = json.dumps(_PROBE_DATA)
            json.loads(text)
            hashlib.sha256(text.encode()).digest()
        best = min(best, time.perf_counter() - started)
    return best * 1000


# --- CPU and memory per process group --------------------------------------------------------

def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def classify(pid: int, *, root: str, database: str, own_pid: int) -> str | None:
    """Which group a process belongs to: api, workers, beat, postgres, rabbitmq, bench, or None."""
    if pid == own_pid:
        return "bench"
    comm = _read(f"/proc/{pid}/comm").strip()
    cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
    if comm == "beam.smp":
        return "rabbitmq"
    if comm == "postgres" or cmdline.startswith("postgres:"):
        # Our database's backends and the server's own processes; not other databases' clients.
        if database and database in cmdline:
            return "postgres"
        return None if _CLIENT_ADDRESS.search(cmdline) or "autovacuum worker" in cmdline else "postgres"
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    if cwd != root:
        return None
    if "gunicorn" in cmdline or "uvicorn" in cmdline:
        return "api"
    if "celery" in cmdline and " worker" in cmdline:
        return "workers"
    if "celery" in cmdline and " beat" in cmdline:
        return "beat"
    return None


@dataclass
class Sample:
    at: float
    ticks: dict[int, int]
    rss: dict[int, int]
    groups: dict[int, str]


class ProcSampler:
    """CPU seconds (user + system) and resident memory per group between two samples."""

    def __init__(self, *, root: str | Path, database: str, own_pid: int | None = None):
        self.root = str(Path(root).resolve())
        self.database = database
        self.own_pid = own_pid or os.getpid()
        self.hz = os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> Sample:
        ticks, rss, groups = {}, {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            group = classify(pid, root=self.root, database=self.database, own_pid=self.own_pid)
            if group is None:
                continue
            stat = _read(f"/proc/{pid}/stat")
            statm = _read(f"/proc/{pid}/statm").split()
            if not stat or not statm:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
            rss[pid] = int(statm[1]) * self.page
            groups[pid] = group
        return Sample(time.monotonic(), ticks, rss, groups)

    @staticmethod
    def rss_mb(sample: Sample, groups: tuple[str, ...] = ("api", "workers", "beat")) -> dict[str, float]:
        """Resident memory of each group in ``sample``, in MB."""
        out = dict.fromkeys(groups, 0.0)
        for pid, group in sample.groups.items():
            if group in out:
                out[group] += sample.rss[pid] / 2**20
        return out

    def delta(self, start: Sample, end: Sample) -> dict[str, dict[str, float]]:
        """Per group: cpu_seconds, cpu_share (of one core), processes, rss_mb at start and end."""
        out: dict[str, dict[str, float]] = defaultdict(lambda: {"cpu_seconds": 0.0, "processes": 0,
                                                                "rss_mb_start": 0.0, "rss_mb_end": 0.0})
        wall = max(end.at - start.at, 1e-9)
        for pid, group in end.groups.items():
            used = end.ticks[pid] - start.ticks.get(pid, 0)
            out[group]["cpu_seconds"] += max(used, 0) / self.hz
            out[group]["processes"] += 1
            out[group]["rss_mb_end"] += end.rss[pid] / 2**20
        for pid, group in start.groups.items():
            out[group]["rss_mb_start"] += start.rss[pid] / 2**20
        for stats in out.values():
            stats["cpu_share"] = stats["cpu_seconds"] / wall
        return dict(out)


# --- load ------------------------------------------------------------------------------------

@dataclass
class LoadConfig:
    url: str
    api_key: str
    mode: str = "batch"
    duration: float = 60.0
    clients: int = 4
    batch_size: int = 1000
    channel: str = "email"
    rate: float = 0.0  # single mode: requests per second in total (0 = as fast as the clients go)
    high_rate: float = 20.0  # mixed mode: high-priority singles per second
    tag: str = "bench"
    limit: int = 0  # stop after this many notifications were accepted (0 = run for `duration`)
    client: str = "raw"  # bench_clients.CLIENTS: raw (asyncio streams) or httpx (httpx.AsyncClient)
    start_at: float = 0.0  # wall clock (time.time()) at which the load starts; 0: at once


@dataclass
class LoadResult:
    started: float = 0.0  # wall clock (time.time())
    ended: float = 0.0
    accepted: int = 0
    rejected_items: int = 0
    requests: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    client_cpu_s: float = 0.0  # CPU seconds of the load generator's process(es) during the load
    processes: int = 1


def rss_growth(timeline: list[tuple[float, dict[str, float]]], *, warmup: float) -> dict[str, dict[str, float]]:
    """Per group: resident memory at the first sample after ``warmup`` seconds of load, at the
    end, the largest, and the growth between the first two in percent.

    A process grows while it warms up (imports, connection pools, caches filling);
    a leak keeps growing after that, so growth is measured from the end of the warm-up.
    """
    if not timeline:
        return {}
    after = [(t, mb) for t, mb in timeline if t >= warmup] or timeline[-1:]
    first_t, first = after[0]
    last_t, last = timeline[-1]
    out = {}
    for group in first:
        start, end = first[group], last.get(group, 0.0)
        out[group] = {"at_s": round(first_t, 1), "start_mb": start, "end_s": round(last_t, 1), "end_mb": end,
                      "max_mb": max(mb.get(group, 0.0) for _, mb in after),
                      "growth_pct": (end - start) / start * 100 if start else 0.0}
    return out


def _item(cfg: LoadConfig, n: int, priority: str | None) -> dict:
    item = {"subject": f"bench {n}", "body": "A benchmark notification from notifier's make bench.",
            "metadata": {"bench": cfg.tag}}
    if cfg.channel == "email":
        item["to"] = f"bench{n % 1000}@example.com"
    elif cfg.channel == "sms":
        item = {"to": f"+1202555{n % 10000:04d}", "body": item["body"], "metadata": item["metadata"]}
    else:
        raise ValueError("bench drives the email or sms channel")
    if priority:
        item["priority"] = priority
    return item


async def run_load(cfg: LoadConfig) -> LoadResult:
    if cfg.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if cfg.client not in CLIENTS:
        raise ValueError(f"client must be one of {', '.join(CLIENTS)}")
    result = LoadResult()
    base = cfg.url.rstrip("/")
    prefix = urlsplit(base).path.rstrip("/")
    single_path = f"{prefix}/api/v1/notifications/{cfg.channel}/"
    batch_path = f"{prefix}/api/v1/notifications/batch/"
    errors = client_errors(cfg.client)
    if cfg.start_at > time.time():
        await asyncio.sleep(cfg.start_at - time.time())
    start = time.monotonic()
    deadline = start + cfg.duration
    result.started = time.time()
    pace = {"next": start}

    def done() -> bool:
        return time.monotonic() >= deadline or (cfg.limit and result.accepted >= cfg.limit)

    def connect_():
        return connect(cfg.client, base, cfg.api_key)

    async def post(conn, path: str, body: bytes, kind: str):
        t0 = time.perf_counter()
        try:
            status, payload = await conn.post(path, body)
        except errors as exc:
            result.errors[type(exc).__name__] += 1
            return None
        finally:
            result.requests += 1
        result.latencies[kind].append(time.perf_counter() - t0)
        if status != 202:
            result.errors[f"HTTP {status}"] += 1
            return None
        return json.loads(payload)

    async def single_client(priority: str | None, kind: str, rate: float, counter: list[int]):
        conn = connect_()
        try:
            while not done():
                if rate:
                    slot = pace["next"]
                    pace["next"] = max(slot, time.monotonic() - 1.0) + 1.0 / rate
                    delay = slot - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if done():
                        break
                counter[0] += 1
                body = json.dumps(_item(cfg, counter[0], priority)).encode()
                if await post(conn, single_path, body, kind) is not None:
                    result.accepted += 1
        finally:
            await conn.aclose()

    async def batch_client(priority: str | None, index: int):
        items = [{"channel": cfg.channel, **_item(cfg, index * cfg.batch_size + i, priority)}
                 for i in range(cfg.batch_size)]
        body = json.dumps({"notifications": items}).encode()  # the same content each time: ids differ
        conn = connect_()
        try:
            while not done():
                answer = await post(conn, batch_path, body, "batch")
                if answer is None:
                    continue
                for r in answer.get("results", []):
                    if "id" in r:
                        result.accepted += 1
                    else:
                        result.rejected_items += 1
        finally:
            await conn.aclose()

    if cfg.mode == "single":
        counter = [0]
        tasks = [single_client(None, "single", cfg.rate, counter) for _ in range(cfg.clients)]
    elif cfg.mode == "batch":
        tasks = [batch_client(None, i) for i in range(cfg.clients)]
    else:
        counter = [10_000_000]  # a few paced clients, so one slow answer does not stall the trickle
        tasks = [batch_client("low", i) for i in range(cfg.clients)] + [
            single_client("high", "single_high", cfg.high_rate, counter) for _ in range(4)]
    await asyncio.gather(*tasks)
    result.ended = time.time()
    return result


# --- the load spread over processes ----------------------------------------------------------

def split_config(cfg: LoadConfig, processes: int, start_at: float) -> list[LoadConfig]:
    """One config per process: the clients spread as evenly as they go, and the rates and the limit in
    proportion to each process's clients (no process without a client)."""
    from dataclasses import replace

    processes = max(1, min(processes, cfg.clients))
    counts = [cfg.clients // processes + (i < cfg.clients % processes) for i in range(processes)]
    return [replace(cfg, clients=n, rate=cfg.rate * n / cfg.clients, high_rate=cfg.high_rate * n / cfg.clients,
                    limit=math.ceil(cfg.limit * n / cfg.clients), start_at=start_at) for n in counts]


def merge_results(results: list[LoadResult]) -> LoadResult:
    """The results of the processes of one load as one."""
    merged = LoadResult(started=min(r.started for r in results), ended=max(r.ended for r in results),
                        processes=len(results))
    for r in results:
        merged.accepted += r.accepted
        merged.rejected_items += r.rejected_items
        merged.requests += r.requests
        merged.client_cpu_s += r.client_cpu_s
        for kind, values in r.latencies.items():
            merged.latencies[kind].extend(values)
        for name, count in r.errors.items():
            merged.errors[name] += count
    return merged


def run_load_here(cfg: LoadConfig) -> LoadResult:
    """``run_load`` in this process, with this process's CPU seconds during it."""
    cpu = time.process_time()
    result = run_event_loop(run_load(cfg))
    result.client_cpu_s = time.process_time() - cpu
    return result


def run_load_processes(cfg: LoadConfig, processes: int = 1) -> LoadResult:
    """The load of ``cfg`` from ``processes`` processes (one: this one), started together.

    A client that costs more CPU per request than the service (httpx: docs/performance.md) is limited by
    the one core its process can use; fresh processes (spawned, not forked: nothing of the caller's
    database connections) each take their share of the clients.
    """
    if processes <= 1 or cfg.clients <= 1:
        return run_load_here(cfg)
    import multiprocessing

    parts = split_config(cfg, processes, start_at=time.time() + 2.0)  # time to start and import
    with multiprocessing.get_context("spawn").Pool(len(parts)) as pool:
        return merge_results(pool.map(run_load_here, parts))
