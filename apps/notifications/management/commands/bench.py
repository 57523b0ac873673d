"""``manage.py bench``: load a RUNNING notifier through its HTTP API and report what it did.

Start the stack first with the null provider, e.g.::

    NOTIFIER_EMAIL_PROVIDERS=null make run
    make bench BENCH_ARGS="--mode batch --duration 60"

The command creates its own API key (its notifications are found by that key),
drives the API (``single``, ``batch`` or ``mixed``), waits until every accepted
notification is ``sent`` (or reports the ones that are not), and prints
accepted/s, sent/s, created→sent and request latency percentiles, errors and
the CPU seconds and memory of each process group (API, workers, PostgreSQL,
RabbitMQ, the load generator itself).
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timezone

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from notifier import bench

NOTIFICATIONS = "notifications_notification"
EVENTS = "notifications_notificationevent"
PENDING = ("queued", "sending", "scheduled")


class Command(BaseCommand):
    help = "Benchmark a running notifier through its HTTP API (null provider) and print throughput and latency."

    def add_arguments(self, parser):
        parser.add_argument("--mode", choices=(*bench.MODES, "broadcast"), default="batch",
                            help="broadcast: one broadcast to --subscribers (apps/broadcasts/bench.py).")
        parser.add_argument("--subscribers", type=int, default=1_000_000, help="broadcast: the topic's size.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The running API (default %(default)s).")
        parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load (default %(default)s).")
        parser.add_argument("--clients", type=int, default=None,
                            help="Concurrent clients (default: 32 for single, 12 for batch, 4 for mixed). Each batch "
                                 "client waits for its answer before it posts again: with 4 the machine idled "
                                 "while every request was in PostgreSQL (docs/performance.md).")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--rate", type=float, default=0.0,
                            help="single: total requests/s to aim at (default: as fast as the clients go).")
        parser.add_argument("--high-rate", type=float, default=20.0, help="mixed: high-priority singles per second.")
        parser.add_argument("--client", choices=bench.CLIENTS, default="raw",
                            help="raw: the bench's own keep-alive client on asyncio streams (cheap, so it leaves the "
                                 "CPU to the service); httpx: httpx.AsyncClient (one per connection), as Python "
                                 "applications call the API. Default %(default)s.")
        parser.add_argument("--processes", type=int, default=1,
                            help="Spread the clients over this many processes (default %(default)s): a client that "
                                 "needs more than one core for the load is otherwise the limit, not the service.")
        parser.add_argument("--channel", choices=("email", "sms"), default="email")
        parser.add_argument("--limit", type=int, default=0, help="Stop after this many accepted notifications.")
        parser.add_argument("--drain-timeout", type=float, default=300.0,
                            help="Seconds to wait after the load for every notification to be sent.")
        parser.add_argument("--keep", action="store_true", help="Keep the run's rows (default: delete them).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument("--rss-every", type=float, default=0.0,
                            help="Sample the resident memory of the API, workers and beat every this many seconds "
                                 "during the load (default: a tenth of --duration, at least 5 s).")
        parser.add_argument("--warmup", type=float, default=60.0,
                            help="Memory growth is measured from the first sample after this many seconds of load "
                                 "(default %(default)s; less for a shorter run).")

    def handle(self, *args, **opts):
        from apps.apikeys.models import ApiKey
        from apps.apikeys.services import api_key_create

        mode = opts["mode"]
        if mode == "broadcast":
            from apps.broadcasts.bench import run

            return run(self, opts)
        clients = opts["clients"] or {"single": 32, "batch": 12}.get(mode, 4)
        tag = f"bench-{uuid.uuid4().hex[:10]}"
        issued = api_key_create(name=tag, scopes=["notifications:write", "notifications:read"])
        key_id = issued.api_key.pk
        cfg = bench.LoadConfig(
            url=opts["url"], api_key=issued.raw, mode=mode, duration=opts["duration"], clients=clients,
            batch_size=opts["batch_size"], channel=opts["channel"], rate=opts["rate"], high_rate=opts["high_rate"],
            tag=tag, limit=opts["limit"], client=opts["client"],
        )
        if settings.DEBUG and settings.DEBUG_SQL:
            self.stderr.write("warning: DEBUG_SQL is on; if the stack runs with it too, Django records every query. "
                              "Unset it for figures.")
        sampler = bench.ProcSampler(root=settings.BASE_DIR, database=settings.DATABASES["default"]["NAME"])
        drained = False
        try:
            self._check_reachable(cfg)
            self._vacuum()  # rows an earlier run kept or left behind
            probe_before = bench.cpu_probe_ms()
            before = sampler.sample()
            timeline: list = []
            stop = threading.Event()
            every = opts["rss_every"] or max(5.0, cfg.duration / 10)
            watcher = threading.Thread(target=self._watch_rss, args=(sampler, before.at, every, timeline, stop),
                                       daemon=True)
            watcher.start()
            minutes: list = []
            minute_watcher = threading.Thread(target=self._watch_minutes, args=(cfg.url, minutes, stop), daemon=True)
            minute_watcher.start()
            try:
                load = bench.run_load_processes(cfg, opts["processes"])
            finally:
                stop.set()
                watcher.join()
                minute_watcher.join()
            after_load = sampler.sample()
            timeline.append((after_load.at - before.at, sampler.rss_mb(after_load)))
            drained, waited = self._drain(key_id, opts["drain_timeout"])
            after_drain = sampler.sample()
            probe_after = bench.cpu_probe_ms()
            report = self._report(cfg, load, key_id, drained, waited,
                                  cpu_load=sampler.delta(before, after_load),
                                  cpu_total=sampler.delta(before, after_drain))
            warmup = min(opts["warmup"], cfg.duration / 5)
            report["rss_during_load"] = bench.rss_growth(timeline, warmup=warmup)
            report["cpu_probe_ms"] = {"before": round(probe_before, 1), "after": round(probe_after, 1)}
            report["minutes"] = self._minutes(minutes)
            if opts["json"]:
                self.stdout.write(json.dumps(report, indent=2, default=str))
            else:
                self.stdout.write(self._format(report))
        finally:
            ApiKey.objects.filter(pk=key_id).update(revoked_at=datetime.now(timezone.utc))
            if opts["keep"] or not drained:
                self.stderr.write(f"kept the run's rows (api_key_id={key_id}, metadata bench={tag})")
            else:
                self._cleanup(key_id)

    # --- steps -------------------------------------------------------------------------------

    @staticmethod
    def _watch_rss(sampler, started: float, every: float, timeline: list, stop) -> None:
        """Resident memory of the service's processes every ``every`` seconds until ``stop``."""
        while not stop.wait(every):
            sample = sampler.sample()
            timeline.append((sample.at - started, sampler.rss_mb(sample)))

    @staticmethod
    def _watch_minutes(url: str, minutes: list, stop) -> None:
        """Every minute of the load: notifications sent so far (``notifier_notifications_total``, every process;
        rows dropped by retention still counted) and the database's size."""
        started, stopped = time.monotonic(), False
        while not stopped:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_database_size(current_database())")
                size = cursor.fetchone()[0]
            minutes.append((time.monotonic() - started, _sent_total(url), size))
            stopped = stop.wait(60.0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            minutes.append((time.monotonic() - started, _sent_total(url), cursor.fetchone()[0]))
        connection.close()  # this thread's own

    @staticmethod
    def _minutes(samples: list) -> list[dict]:
        out = []
        for (t0, sent0, _), (t1, sent1, size) in zip(samples, samples[1:]):
            if t1 - t0 >= 50 and sent0 is not None and sent1 is not None:
                out.append({"minute": len(out) + 1, "sent_per_s": (sent1 - sent0) / (t1 - t0),
                            "database_mb": size / 1e6})
        return out

    def _check_reachable(self, cfg) -> None:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(f"{cfg.url.rstrip('/')}/healthz", timeout=5).read()
        except urllib.error.HTTPError:
            pass  # it answered
        except OSError as exc:
            raise CommandError(f"No notifier answering at {cfg.url} ({exc}); start it first (make run).") from exc

    def _pending(self, key_id) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {NOTIFICATIONS} WHERE api_key_id = %s AND status = ANY(%s)",
                           [key_id, list(PENDING)])
            return cursor.fetchone()[0]

    def _drain(self, key_id, timeout: float) -> tuple[bool, float]:
        started = time.monotonic()
        while True:
            if self._pending(key_id) == 0:
                return True, time.monotonic() - started
            if time.monotonic() - started > timeout:
                return False, time.monotonic() - started
            time.sleep(0.5)

    def _report(self, cfg, load, key_id, drained: bool, waited: float, *, cpu_load, cpu_total) -> dict:
        load_seconds = max(load.ended - load.started, 1e-9)
        load_end = datetime.fromtimestamp(load.ended, timezone.utc)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT status, count(*) FROM {NOTIFICATIONS} WHERE api_key_id = %s GROUP BY status",
                           [key_id])
            by_status = dict(cursor.fetchall())
            cursor.execute(
                f"""
                SELECT coalesce(priority, 'all'), count(*),
                       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
                           ORDER BY extract(epoch FROM sent_at - created_at)),
                       max(extract(epoch FROM sent_at - created_at)),
                       min(created_at), max(sent_at), count(*) FILTER (WHERE sent_at <= %s)
                FROM {NOTIFICATIONS} WHERE api_key_id = %s AND status = 'sent'
                GROUP BY ROLLUP(priority)
                """,
                [load_end, key_id],
            )
            latency = {}
            for priority, count, pcts, worst, first_created, last_sent, sent_during_load in cursor.fetchall():
                if not count:  # nothing sent (ROLLUP still gives its total row, without percentiles)
                    continue
                latency[priority] = {"sent": count, "p50": pcts[0], "p95": pcts[1], "p99": pcts[2],
                                     "max": float(worst) if worst is not None else None,
                                     "first_created": first_created, "last_sent": last_sent,
                                     "sent_during_load": sent_during_load}
        total = sum(by_status.values())
        sent = by_status.get("sent", 0)
        overall = latency.get("all", {})
        span = None
        if overall.get("first_created") and overall.get("last_sent"):
            span = (overall["last_sent"] - overall["first_created"]).total_seconds()
        return {
            "mode": cfg.mode, "client": cfg.client, "url": cfg.url, "clients": cfg.clients,
            "batch_size": cfg.batch_size,
            "duration_s": round(load_seconds, 2), "tag": cfg.tag,
            "requests": load.requests, "accepted": load.accepted, "rejected_items": load.rejected_items,
            "accepted_per_s": load.accepted / load_seconds,
            "rows": total, "by_status": by_status, "sent": sent, "lost": total - sent, "drained": drained,
            "drain_wait_s": round(waited, 2),
            "sent_per_s_end_to_end": (sent / span) if span else None,
            "sent_per_s_during_load": overall.get("sent_during_load", 0) / load_seconds,
            "created_to_sent_s": {k: {m: v[m] for m in ("sent", "p50", "p95", "p99", "max")}
                                  for k, v in latency.items()},
            "request_latency_s": {kind: bench.summarize(values) for kind, values in load.latencies.items()},
            "errors": dict(load.errors),
            "processes": load.processes, "client_cpu_s": round(load.client_cpu_s, 2),
            "client_cpu_ms_per_request": load.client_cpu_s / load.requests * 1000 if load.requests else None,
            "client_cpu_share": load.client_cpu_s / load_seconds,
            "cpu_during_load": cpu_load, "cpu_until_drained": cpu_total,
        }

    def _cleanup(self, key_id) -> None:
        """Delete the run's rows (all of them were sent, so no worker still writes their events)."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {EVENTS} WHERE notification_id IN "
                           f"(SELECT id FROM {NOTIFICATIONS} WHERE api_key_id = %s)", [key_id])
            cursor.execute(f"DELETE FROM {NOTIFICATIONS} WHERE api_key_id = %s", [key_id])
        self._vacuum()

    def _vacuum(self) -> None:
        """VACUUM (ANALYZE) the two hot tables, so the next run starts from fresh statistics and no dead rows.

        Where autovacuum is off (as on this kind of development machine) hundreds of
        thousands of deleted rows per run otherwise pile up: the tables and their
        indexes bloat and the planner works from stale statistics, and each run is
        slower than the one before.
        """
        with connection.cursor() as cursor:  # autocommit: VACUUM cannot run in a transaction
            for table in (NOTIFICATIONS, EVENTS):
                cursor.execute(f"VACUUM (ANALYZE) {table}")

    # --- output -------------------------------------------------------------------------------

    @staticmethod
    def _format(r: dict) -> str:
        def ms(value):
            return "-" if value is None else f"{value * 1000:.1f} ms"

        lines = [
            f"notifier bench: mode={r['mode']} client={r['client']} clients={r['clients']} "
            f"batch_size={r['batch_size'] if r['mode'] != 'single' else 1} load={r['duration_s']} s  url={r['url']}",
            f"  requests {r['requests']}, accepted {r['accepted']} ({r['accepted_per_s']:.0f}/s), "
            f"rejected items {r['rejected_items']}, errors {r['errors'] or 'none'}",
            f"  sent {r['sent']} of {r['rows']} rows; "
            f"sent/s end to end {r['sent_per_s_end_to_end'] or 0:.0f}, during load {r['sent_per_s_during_load']:.0f}; "
            f"{'all sent' if r['drained'] and not r['lost'] else 'NOT SENT: ' + str(r['lost'])} "
            f"(drain {r['drain_wait_s']} s) by status {r['by_status']}",
            "  created -> sent:",
        ]
        for priority, v in sorted(r["created_to_sent_s"].items()):
            lines.append(f"    {priority:7s} n={v['sent']:<8d} p50 {ms(v['p50'])}  p95 {ms(v['p95'])}  "
                         f"p99 {ms(v['p99'])}  max {ms(v['max'])}")
        lines.append("  request latency:")
        for kind, v in sorted(r["request_latency_s"].items()):
            lines.append(f"    {kind:11s} n={v['n']:<8d} p50 {ms(v['p50'])}  p95 {ms(v['p95'])}  "
                         f"p99 {ms(v['p99'])}  max {ms(v['max'])}")
        if r["client_cpu_ms_per_request"] is not None:
            lines.append(f"  client CPU per request: {r['client_cpu_ms_per_request']:.2f} ms, "
                         f"{r['client_cpu_share']:.2f} of a core in {r['processes']} process(es) "
                         f"({os.cpu_count()} cores here); near one core per process, or near what the service "
                         "leaves, the client is the limit, not the service")
        lines.append("  CPU seconds (share of one core) during load | until drained; RSS MB start -> end:")
        for group in ("api", "workers", "beat", "postgres", "rabbitmq", "bench"):
            a, b = r["cpu_during_load"].get(group), r["cpu_until_drained"].get(group)
            if not a and not b:
                continue
            a = a or {"cpu_seconds": 0, "cpu_share": 0}
            b = b or a
            lines.append(
                f"    {group:9s} {a['cpu_seconds']:7.1f} s ({a['cpu_share']:.2f}) | {b['cpu_seconds']:7.1f} s "
                f"({b['cpu_share']:.2f})  procs {b.get('processes', 0):<3} "
                f"RSS {b.get('rss_mb_start', 0):.0f} -> {b.get('rss_mb_end', 0):.0f} MB")
        rss = r.get("rss_during_load") or {}
        if rss:
            lines.append("  resident memory during the load, from the end of the warm-up:")
            for group, v in rss.items():
                lines.append(f"    {group:9s} {v['start_mb']:.0f} MB at {v['at_s']:.0f} s -> {v['end_mb']:.0f} MB at "
                             f"{v['end_s']:.0f} s ({v['growth_pct']:+.1f}%), max {v['max_mb']:.0f} MB")
        if len(r.get("minutes") or []) >= 2:
            first, last = r["minutes"][0], r["minutes"][-1]
            lines.append("  per minute of load: sent/s (notifier_notifications_total) and database size:")
            lines.append("    " + "  ".join(f"{m['minute']}: {m['sent_per_s']:.0f}/s {m['database_mb']:.0f} MB"
                                            for m in r["minutes"]))
            lines.append(f"    last minute vs first: {(last['sent_per_s'] / first['sent_per_s'] - 1) * 100:+.1f}% "
                         f"sent/s, database {first['database_mb']:.0f} -> {last['database_mb']:.0f} MB")
        probe = r.get("cpu_probe_ms")
        if probe:
            lines.append(f"  CPU speed probe (fixed Python work, lower is faster): {probe['before']:.1f} ms before the "
                         f"load, {probe['after']:.1f} ms after the drain")
        lines.append("  (postgres: the server's own processes and this database's backends; rabbitmq: the whole "
                     "broker, shared with anything else using it)")
        return "\n".join(lines)


def _sent_total(url: str) -> float | None:
    """The service's ``notifier_notifications_total{status="sent"}`` summed over channels, from /metrics."""
    import urllib.request

    try:
        text = urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=10).read().decode()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("notifier_notifications_total{") and 'status="sent"' in line)
