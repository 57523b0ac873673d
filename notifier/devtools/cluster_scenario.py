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
from dataclasses import asdict
from pathlib import Path

from notifier.devtools.cluster_load import after_drain_figures, post_all, status_counts
from notifier.devtools.cluster_stack import FAULTS, ROOT, Processes, Scenario, stack_env, start_stack, wait_ready

__all__ = ["FAULTS", "Scenario", "format_report", "main", "run_scenario"]


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

    procs = Processes(workdir, stack_env(cluster, scenario, workdir, smtp_port))
    api_port = free_port()
    url = f"http://127.0.0.1:{api_port}"
    fault: dict = {}
    try:
        started = time.monotonic()
        start_stack(procs, scenario, api_port)
        wait_ready(cluster, procs, url, scenario.ready_timeout)
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
                fault["status_at_fault"] = status_counts(key_id)
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

        load = asyncio.run(post_all(url, issued.raw, scenario, tag, on_progress))
        load_s = max(load.ended - load.started, 1e-9)
        log(f"[{scenario.fault}] {len(load.accepted)} accepted in {load_s:.1f}s ({len(load.accepted) / load_s:.0f}/s); "
            f"{load.retries} retried requests {load.errors or ''}")

        # Drain: every accepted notification `sent`.
        close_old_connections()
        drain_started = time.monotonic()
        accepted = len(set(load.accepted))
        last_print = 0.0
        while True:
            counts = status_counts(key_id)
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
        figures = after_drain_figures(key_id, fault.get("at"))

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
