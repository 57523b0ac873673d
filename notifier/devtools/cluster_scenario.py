"""Scale-out scenario: the whole stack on a 3-node RabbitMQ cluster with quorum queues, a fault mid-load.

``make cluster-test`` (this module's ``main``) starts a cluster (``rabbit_cluster.py``) and, for
each fault in turn, the stack against it: the API (gunicorn, ASGI), a high-priority worker, two
normal-priority "worker hosts" (``normal@host-a``, ``normal@host-b``, thread pools as in the
Procfile) and beat, with ``NOTIFIER_QUEUE_TYPE=quorum`` and all the broker URLs in
``CELERY_BROKER_URL``. It posts the notifications through ``POST /api/v1/notifications/batch/``
(each batch with an ``Idempotency-Key`` and retried until answered, as a careful client does),
injects the fault once ``fault_at`` of them are accepted, waits until every accepted one is ``sent``
and reports:

- ``broker``: SIGKILL of the RabbitMQ node holding most client connections (all processes connect
  to the first URL, which also makes it the leader of the quorum queues they declared); the node
  is started again before the next scenario;
- ``worker``: SIGKILL of the process group of ``normal@host-a``.

Deliveries are counted where they arrive: email goes over real SMTP to ``smtp_counter`` on
127.0.0.1, which counts messages per ``X-Notifier-Id``, so ``duplicates`` is what a receiver saw
twice. (``--provider null`` skips SMTP; the report then only has ``reclaimed``: notifications
claimed more than once, an upper bound of the sends repeated.)

    python -m notifier.devtools.cluster_scenario --notifications 100000 --faults broker,worker

The stack uses its own database ``notifier_<NOTIFIER_TEST_NAMESPACE>_cluster`` (created,
migrated and dropped again), Redis database ``NOTIFIER_TEST_REDIS_DB`` (flushed first) and only
the cluster's brokers; nothing is left in the machine's RabbitMQ or PostgreSQL.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FAULTS = ("broker", "worker", "none")


@dataclass
class Scenario:
    fault: str = "broker"
    notifications: int = 100_000
    batch_size: int = 1000
    clients: int = 4
    fault_at: float = 0.4  # inject the fault once this share of the notifications is accepted
    provider: str = "smtp"  # smtp: counted by smtp_counter; null: no SMTP, re-claims only
    chunk_size: int = 1000  # NOTIFIER_CHUNK_SIZE
    worker_concurrency: int = 2
    web_workers: int = 2
    # A row left `sending` by a killed worker is put back after this (the task time limit is below it).
    claim_timeout: float = 20.0
    sweep_interval: int = 5  # NOTIFIER_SWEEP_INTERVAL (whole seconds)
    drain_timeout: float = 900.0
    ready_timeout: float = 180.0


@dataclass
class _Load:
    accepted: list[str] = field(default_factory=list)
    rejected_items: int = 0
    requests: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0


class _Processes:
    """Stack processes, each in its own process group, logging to ``workdir/<name>.log``."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir, self.env = workdir, env
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with (self.workdir / f"{name}.log").open("ab") as log:
            popen = subprocess.Popen(args, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = popen
        return popen

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.procs[name].pid, sig)
        except ProcessLookupError:
            pass

    def check_alive(self, *names: str) -> None:
        for name in names or list(self.procs):
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited ({self.procs[name].returncode}):\n{self.output(name)}")

    def output(self, name: str, tail: int = 60) -> str:
        try:
            return "\n".join((self.workdir / f"{name}.log").read_text(errors="replace").splitlines()[-tail:])
        except OSError:
            return ""

    def stop_all(self, timeout: float = 20.0) -> None:
        for name in self.procs:
            self.kill(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for popen in self.procs.values():
            try:
                popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for name, popen in self.procs.items():
            self.kill(name, signal.SIGKILL)  # anything left in the group
            try:
                popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()


def database_url() -> str:
    """The URL of Django's default database (what the stack processes must use)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = ""
    if db.get("USER"):
        auth = quote(db["USER"], safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else "") + "@"
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _stack_env(cluster, scenario: Scenario, workdir: Path, smtp_port: int | None) -> dict[str, str]:
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFIER_", "CELERY_", "DJANGO_"))}
    prom = workdir / "prometheus"
    prom.mkdir(exist_ok=True)
    time_limit = max(5, int(scenario.claim_timeout * 0.75))
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": cluster.broker_url,
        "NOTIFIER_QUEUE_TYPE": "quorum",
        "NOTIFIER_EMAIL_PROVIDERS": "smtp" if scenario.provider == "smtp" else "null",
        "NOTIFIER_SMS_PROVIDERS": "null",
        "NOTIFIER_PUSH_PROVIDERS": "null",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port or 1),
        "NOTIFIER_CHUNK_SIZE": str(scenario.chunk_size),
        "NOTIFIER_CLAIM_TIMEOUT": str(scenario.claim_timeout),
        "CELERY_TASK_TIME_LIMIT": str(time_limit),
        "CELERY_TASK_SOFT_TIME_LIMIT": str(max(3, time_limit - 3)),
        "NOTIFIER_SWEEP_INTERVAL": str(scenario.sweep_interval),
        "NOTIFIER_REQUEUE_AFTER": str(max(30.0, scenario.claim_timeout * 2)),
        "NOTIFIER_INBOX_PUBSUB_PREFIX": f"notifier:cluster-{secrets.token_hex(4)}:inbox:",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
        "LOG_FORMAT": "plain",
        "LOG_LEVEL": "WARNING",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
    })
    return env


def _start_stack(procs: _Processes, scenario: Scenario, port: int) -> None:
    gunicorn, celery = str(BIN / "gunicorn"), str(BIN / "celery")
    procs.start("api", [gunicorn, "config.asgi:application", "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}",
                        "--workers", str(scenario.web_workers), "--worker-class", "asgi", "--no-control-socket",
                        "--timeout", "120"])
    worker = [celery, "-A", "config.celery_app", "worker", "--pool", "threads", "-O", "fair", "--without-gossip",
              "--without-mingle", "--loglevel", "WARNING"]
    procs.start("worker-high", [*worker, "-Q", "notifications.high", "-n", "high@cluster", "-c", "2"])
    for host in ("host-a", "host-b"):
        procs.start(f"worker-normal-{host}", [*worker, "-Q", "notifications.normal", "-n", f"normal@{host}",
                                              "-c", str(scenario.worker_concurrency)])
    # beat's jobs (dispatcher, sweep: it puts a dead worker's rows back) run from their own queue
    procs.start("worker-maintenance", [*worker, "-Q", "notifications.maintenance", "-n", "maintenance@cluster",
                                       "-c", "2"])
    procs.start("beat", [celery, "-A", "config.celery_app", "beat", "--scheduler",
                         "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile=", "--loglevel", "WARNING"])


def _wait_ready(cluster, procs: _Processes, url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        try:
            api = httpx.get(url + "/api/v1/notifications/", timeout=2).status_code == 401
        except httpx.HTTPError:
            api = False
        queues = cluster.queues() if api else {}
        consumers = {name: queues.get(name, {}).get("consumers", 0)
                     for name in ("notifications.high", "notifications.normal", "notifications.maintenance")}
        if api and consumers["notifications.high"] >= 1 and consumers["notifications.normal"] >= 2 \
                and consumers["notifications.maintenance"] >= 1:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stack was not ready in {timeout:.0f}s (API answering: {api}, consumers: "
                               f"{consumers})\n" + "\n".join(f"--- {n}\n{procs.output(n, 15)}" for n in procs.procs))
        time.sleep(1)


async def _post_all(url: str, key: str, scenario: Scenario, tag: str, on_progress) -> _Load:
    """POST every batch (retrying until answered, with its Idempotency-Key) with ``clients`` in parallel."""
    import httpx

    load = _Load()
    batches = -(-scenario.notifications // scenario.batch_size)
    next_batch = iter(range(batches))

    def body(index: int) -> bytes:
        first = index * scenario.batch_size
        items = [{"channel": "email", "to": f"c{n % 5000}@example.com", "subject": f"cluster {n}",
                  "body": "A notification of notifier's cluster scenario.", "metadata": {"run": tag}}
                 for n in range(first, min(first + scenario.batch_size, scenario.notifications))]
        return json.dumps({"notifications": items}).encode()

    def error(kind: str) -> None:
        load.errors[kind] = load.errors.get(kind, 0) + 1

    async def client(http: httpx.AsyncClient) -> None:
        for index in next_batch:
            payload = body(index)
            headers = {"Idempotency-Key": f"{tag}-{index}"}
            deadline = time.monotonic() + 300
            while True:
                load.requests += 1
                try:
                    response = await http.post("/api/v1/notifications/batch/", content=payload, headers=headers)
                except httpx.HTTPError as exc:
                    error(type(exc).__name__)
                else:
                    if response.status_code == 202:
                        for result in response.json()["results"]:
                            if "id" in result:
                                load.accepted.append(result["id"])
                            else:
                                load.rejected_items += 1
                        on_progress(len(load.accepted))
                        break
                    error(f"HTTP {response.status_code}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"batch {index} not accepted in 300 s: {load.errors}")
                load.retries += 1
                await asyncio.sleep(0.5)

    load.started = time.time()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=scenario.clients, max_keepalive_connections=scenario.clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(scenario.clients)))
    load.ended = time.time()
    return load


def _status_counts(key_id: int) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM notifications_notification WHERE api_key_id = %s GROUP BY status",
                       [key_id])
        return dict(cursor.fetchall())


def _after_drain_figures(key_id: int, fault_time: float | None) -> dict:
    """Reclaims (claimed more than once), the span from first created to last sent, the longest pause
    in sending after the fault."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT e.notification_id FROM notifications_notificationevent e"
            " JOIN notifications_notification n ON n.id = e.notification_id"
            " WHERE n.api_key_id = %s AND e.status = 'sending' GROUP BY e.notification_id HAVING count(*) > 1) r",
            [key_id])
        reclaimed = cursor.fetchone()[0]
        cursor.execute("SELECT extract(epoch FROM min(created_at)), extract(epoch FROM max(sent_at))"
                       " FROM notifications_notification WHERE api_key_id = %s", [key_id])
        first_created, last_sent = (float(v) if v is not None else None for v in cursor.fetchone())
        pause = None
        if fault_time is not None:
            cursor.execute(
                "SELECT max(gap) FROM (SELECT extract(epoch FROM sent_at - lag(sent_at) OVER (ORDER BY sent_at)) gap"
                " FROM notifications_notification WHERE api_key_id = %s AND sent_at IS NOT NULL"
                " AND sent_at >= to_timestamp(%s) - interval '2 seconds') g", [key_id, fault_time])
            pause = cursor.fetchone()[0]
    return {"reclaimed": reclaimed, "first_created": first_created, "last_sent": last_sent,
            "longest_pause_after_fault_s": round(float(pause), 2) if pause is not None else None}


def run_scenario(cluster, scenario: Scenario, workdir: Path, *, log=print) -> dict:
    """Run one scenario against ``cluster`` (a started ``RabbitCluster``) and return its report.

    Django must be set up on the database the stack is to use (``database_url()``), migrated.
    Every process started here is stopped before returning."""
    import httpx  # noqa: F401 - fail early when missing
    from django.db import close_old_connections, connection

    from apps.apikeys.services import api_key_create
    from notifier.devtools.rabbit_cluster import free_port

    if scenario.fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"cluster-{scenario.fault}-{uuid.uuid4().hex[:8]}"
    issued = api_key_create(name=tag, scopes=["notifications:write", "notifications:read"])
    key_id = issued.api_key.pk
    report: dict = {"fault": scenario.fault, "scenario": asdict(scenario), "nodes": [n.name for n in cluster.nodes]}

    counter = None
    smtp_port = None
    counts_file = workdir / f"{tag}-smtp-counts.json"
    if scenario.provider == "smtp":
        port_file = workdir / f"{tag}-smtp.port"
        counter = subprocess.Popen(
            [sys.executable, "-m", "notifier.devtools.smtp_counter", "--port-file", str(port_file), "--out",
             str(counts_file)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(workdir / "smtp-counter.log").open("ab"),
            start_new_session=True)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if counter.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("smtp_counter did not start")
            time.sleep(0.05)
        smtp_port = int(port_file.read_text())

    procs = _Processes(workdir, _stack_env(cluster, scenario, workdir, smtp_port))
    api_port = free_port()
    url = f"http://127.0.0.1:{api_port}"
    fault: dict = {}
    try:
        started = time.monotonic()
        _start_stack(procs, scenario, api_port)
        _wait_ready(cluster, procs, url, scenario.ready_timeout)
        report["stack_ready_s"] = round(time.monotonic() - started, 1)
        log(f"[{scenario.fault}] stack ready in {report['stack_ready_s']}s; posting {scenario.notifications} "
            f"notifications ({scenario.clients} clients, batches of {scenario.batch_size})")

        threshold = max(1, int(scenario.notifications * scenario.fault_at))
        fired = threading.Event()

        if scenario.fault == "broker":
            # The node most clients use (ties: the normal queue's leader), chosen now so the kill is immediate.
            queues, connections = cluster.queues(), cluster.connections_per_node()
            leader = queues.get("notifications.normal", {}).get("leader")
            target = max(cluster.nodes, key=lambda n: (connections.get(n.name, 0), n.name == leader))
            fault.update({"connections_before": connections, "normal_queue_leader_before": leader})

        def inject() -> None:
            try:
                fault["at"] = time.time()
                if scenario.fault == "broker":
                    cluster.kill(target)
                    fault["killed"] = target.name
                elif scenario.fault == "worker":
                    procs.kill("worker-normal-host-a")
                    fault["killed"] = "normal@host-a (process group, SIGKILL)"
                fault["accepted_at_fault"] = accepted_so_far[0]
                fault["status_at_fault"] = _status_counts(key_id)
                log(f"[{scenario.fault}] fault injected after {accepted_so_far[0]} accepted: "
                    f"{fault.get('killed', 'none')}; statuses then {fault['status_at_fault']}")
            except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                fault["error"] = repr(exc)
            finally:
                connection.close()

        accepted_so_far = [0]

        def on_progress(accepted: int) -> None:
            accepted_so_far[0] = accepted
            if accepted >= threshold and not fired.is_set():
                fired.set()
                threading.Thread(target=inject, name="fault", daemon=True).start()

        load = asyncio.run(_post_all(url, issued.raw, scenario, tag, on_progress))
        load_s = max(load.ended - load.started, 1e-9)
        log(f"[{scenario.fault}] {len(load.accepted)} accepted in {load_s:.1f}s ({len(load.accepted) / load_s:.0f}/s); "
            f"{load.retries} retried requests {load.errors or ''}")

        # Drain: every accepted notification `sent`.
        close_old_connections()
        drain_started = time.monotonic()
        accepted = len(set(load.accepted))
        last_print = 0.0
        while True:
            counts = _status_counts(key_id)
            total, sent = sum(counts.values()), counts.get("sent", 0)
            if sent >= accepted and total == sent:
                break
            if time.monotonic() - drain_started > scenario.drain_timeout:
                break
            if time.monotonic() - last_print > 15:
                last_print = time.monotonic()
                log(f"[{scenario.fault}] waiting: {counts}")
            time.sleep(0.5)
        drain_s = time.monotonic() - drain_started
        figures = _after_drain_figures(key_id, fault.get("at"))

        smtp: dict = {}
        if counter is not None:
            time.sleep(1)  # a send still on the wire
            counter.send_signal(signal.SIGTERM)
            counter.wait(30)
            summary = json.loads(counts_file.read_text())
            ids = set(load.accepted)
            counted = summary["counts"]
            smtp = {"messages": summary["messages"], "distinct": summary["distinct"],
                    "never_received": len(ids - set(counted)), "unknown": len(set(counted) - ids),
                    "duplicates": summary["messages"] - summary["distinct"],
                    "notifications_duplicated": sum(1 for c in counted.values() if c > 1)}
        end_to_end = (figures["last_sent"] - figures["first_created"]) if figures["last_sent"] else None
        report.update({
            "accepted": accepted, "rejected_items": load.rejected_items, "requests": load.requests,
            "retried_requests": load.retries, "request_errors": load.errors,
            "rows": total, "by_status": counts, "sent": sent, "not_sent": total - sent,
            "lost": max(accepted - sent, 0),
            "load_s": round(load_s, 1), "accepted_per_s": round(accepted / load_s, 1),
            "drain_after_load_s": round(drain_s, 1),
            "end_to_end_s": round(end_to_end, 1) if end_to_end else None,
            "sent_per_s": round(sent / end_to_end, 1) if end_to_end else None,
            "reclaimed": figures["reclaimed"], "longest_pause_after_fault_s": figures["longest_pause_after_fault_s"],
            "fault": scenario.fault, "fault_detail": fault, "smtp": smtp,
            "duplicates": smtp.get("duplicates") if smtp else None,
        })
        if scenario.fault == "broker":
            try:
                queues = cluster.queues()
                report["normal_queue_after"] = {k: queues.get("notifications.normal", {}).get(k)
                                                for k in ("leader", "members", "online")}
            except Exception as exc:  # noqa: BLE001
                report["normal_queue_after"] = repr(exc)
        report["logs"] = str(workdir)
        return report
    finally:
        procs.stop_all()
        if counter is not None and counter.poll() is None:
            counter.kill()
            counter.wait(5)
        close_old_connections()


def format_report(report: dict) -> str:
    smtp = report.get("smtp") or {}
    fault = report.get("fault_detail") or {}
    lines = [
        f"== fault: {report['fault']}  killed: {fault.get('killed', '-')}",
        f"   accepted {report['accepted']}  sent {report['sent']}  not sent {report['not_sent']}  "
        f"statuses {report['by_status']}",
        f"   load {report['load_s']}s ({report['accepted_per_s']}/s accepted), drained {report['drain_after_load_s']}s "
        f"after; first created -> last sent {report['end_to_end_s']}s ({report['sent_per_s']}/s sent)",
        f"   requests {report['requests']}, retried {report['retried_requests']}, "
        f"errors {report['request_errors'] or '{}'}",
        f"   longest pause in sending after the fault {report['longest_pause_after_fault_s']}s",
    ]
    if smtp:
        lines.append(f"   SMTP: {smtp['messages']} messages for {smtp['distinct']} notifications: duplicates "
                     f"{smtp['duplicates']} ({smtp['notifications_duplicated']} notifications), never received "
                     f"{smtp['never_received']}")
    lines.append(f"   claimed more than once: {report['reclaimed']}")
    if "normal_queue_after" in report:
        lines.append(f"   notifications.normal before: leader {fault.get('normal_queue_leader_before')}, "
                     f"connections {fault.get('connections_before')}; after: {report['normal_queue_after']}")
    return "\n".join(lines)


# --- make cluster-test -----------------------------------------------------------------------

def _setup_django(database: str, redis_db: str) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://127.0.0.1:5432/{database}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(40), "LOG_LEVEL": "WARNING",
        "NOTIFIER_SMS_PROVIDERS": "null", "NOTIFIER_PUSH_PROVIDERS": "null",
    })
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import atexit
        import shutil

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="notifier-cluster-metrics-")
        atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _admin(sql: str, params=()) -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, dbname="postgres", user="postgres", autocommit=True) as conn:
        conn.execute(sql, params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--faults", default="broker,worker", help="comma-separated, run in turn: broker, worker, none")
    parser.add_argument("--provider", choices=("smtp", "null"), default="smtp")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--fault-at", type=float, default=0.4)
    parser.add_argument("--claim-timeout", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    parser.add_argument("--json", help="also write the reports here")
    args = parser.parse_args()
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    if any(f not in FAULTS for f in faults):
        parser.error(f"faults: {', '.join(FAULTS)}")

    namespace = os.environ.get("NOTIFIER_TEST_NAMESPACE", "test")
    database = f"notifier_{namespace}_cluster"
    redis_db = os.environ.get("NOTIFIER_TEST_REDIS_DB", "15")
    workdir = Path(tempfile.mkdtemp(prefix="notifier-cluster-test-"))
    from psycopg import sql as pgsql

    _admin(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(database)))
    _admin(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(database)))
    _setup_django(database, redis_db)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    import redis

    from notifier.devtools.rabbit_cluster import RabbitCluster

    print(f"database {database} (migrating), Redis db {redis_db} (flushed), logs in {workdir}", flush=True)
    call_command("migrate", interactive=False, verbosity=0)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    reports = []
    started = time.monotonic()
    cluster = RabbitCluster(workdir=workdir / "rabbits")
    try:
        cluster.start()
        print(f"RabbitMQ cluster up in {time.monotonic() - started:.1f}s: {', '.join(cluster.urls())}", flush=True)
        for fault in faults:
            for node in cluster.nodes:  # a node killed by the previous scenario comes back first
                if not node.alive():
                    t0 = time.monotonic()
                    cluster.restart(node)
                    print(f"restarted {node.name} ({time.monotonic() - t0:.1f}s); it rejoined the cluster", flush=True)
            scenario = Scenario(fault=fault, notifications=args.notifications, provider=args.provider,
                                clients=args.clients, batch_size=args.batch_size, fault_at=args.fault_at,
                                claim_timeout=args.claim_timeout)
            report = run_scenario(cluster, scenario, workdir / fault, log=lambda m: print(m, flush=True))
            reports.append(report)
            print(format_report(report), flush=True)
    finally:
        cluster.stop()
        connections.close_all()
        if not args.keep:
            _admin(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(database)))
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2, default=str))
    print("\n== cluster-test summary")
    for report in reports:
        print(f"   {report['fault']:>6}: {report['accepted']} accepted, {report['sent']} sent, "
              f"{report['lost']} lost, duplicates {report['duplicates']}, "
              f"reclaimed {report['reclaimed']}, {report['end_to_end_s']}s end to end ({report['sent_per_s']}/s)")
    failed = [r for r in reports if r["lost"] or r["not_sent"]]
    if not args.keep and not failed:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs kept in {workdir}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
