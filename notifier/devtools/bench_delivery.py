"""In-process CPU benchmark of the worker's delivery path (``delivery.worker.deliver_chunk``).

Measures CPU time (``time.thread_time``), not wall time: on a shared machine
wall-clock figures move with the neighbours' load. CPU time moves too (shared
caches, a virtual machine's stolen time), less so: compare the minimum and
the lower quartile of many chunks. Rows are inserted with ``bulk.create_notifications`` (no broker publish),
delivered by ``deliver_chunk`` with the null providers, and deleted again.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/notifier_bench \\
        .venv/bin/python notifier/devtools/bench_delivery.py --rounds 20 [--profile out.prof]

Use a database of its own (migrated): it inserts and deletes rows. Metrics are
written the way the stack writes them (``PROMETHEUS_MULTIPROC_DIR``, a
temporary directory unless set).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

DEFAULTS = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DEBUG": "0",
    "NOTIFIER_EMAIL_PROVIDERS": "null",
    "NOTIFIER_SMS_PROVIDERS": "null",
    "NOTIFIER_PUSH_PROVIDERS": "null",
    "LOG_LEVEL": "WARNING",
    "DELIVERY_LOG_LEVEL": "WARNING",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--channel", default="email", choices=["email", "sms"])
    parser.add_argument("--recipients", action="store_true",
                        help="address recipients (preferences apply) instead of direct addresses")
    parser.add_argument("--profile", help="write a cProfile (thread CPU time) of the timed rounds here")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="skip what a worker does once started (notifier.process.freeze_startup_objects)")
    args = parser.parse_args()

    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="notifier-bench-metrics-")

    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.notifications import bulk
    from apps.notifications.delivery import worker
    from apps.notifications.models import Notification, NotificationEvent, Status
    from notifier.ids import uuid7_many

    recipients = []
    if args.recipients:
        from apps.recipients.models import Recipient

        for i in range(100):
            recipient, _ = Recipient.objects.get_or_create(
                external_id=f"bench-delivery-{i}",
                defaults={"email": f"bench{i}@example.com", "phone": f"+1202555{i:04d}"})
            recipients.append(recipient)

    def make_chunk() -> list[str]:
        now = timezone.now()
        rows, events = [], []
        for n, notification_id in enumerate(uuid7_many(args.chunk)):
            if args.channel == "email":
                content = {"subject": f"bench {n}", "body": "A benchmark notification from notifier's make bench."}
                to = f"bench{n % 1000}@example.com"
            else:
                content = {"body": "A benchmark notification from notifier's make bench."}
                to = f"+1202555{n % 10000:04d}"
            recipient = recipients[n % len(recipients)] if recipients else None
            rows.append(dict(id=notification_id, channel=args.channel, recipient_id=recipient.pk if recipient else None,
                             to="" if recipient else to, category="transactional", priority="low",
                             content=content, status=Status.QUEUED, queued_at=now, metadata={"bench": "delivery"},
                             created_at=now, updated_at=now))
            events.append((Status.QUEUED, now, "", "", None))
        with transaction.atomic():
            created = bulk.create_notifications(rows, events)
        return [str(n.id) for n in created]

    def cleanup() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {NotificationEvent._meta.db_table}, {Notification._meta.db_table} CASCADE")

    if not args.no_gc_freeze:
        from notifier.process import freeze_startup_objects

        freeze_startup_objects()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)
    per_item = []
    cleanup()
    try:
        for number in range(args.warmup + args.rounds):
            ids = make_chunk()
            timed = number >= args.warmup
            if timed and profiler:
                profiler.enable()
            started = time.thread_time()
            counts = worker.deliver_chunk(ids)
            spent = time.thread_time() - started
            if timed and profiler:
                profiler.disable()
            if counts.get(Status.SENT, 0) != len(ids):
                raise SystemExit(f"not all sent: {counts}")
            if timed:
                per_item.append(spent / len(ids) * 1e6)
            cleanup()
    finally:
        cleanup()
    print(f"deliver_chunk CPU per notification over {args.rounds} chunks of {args.chunk} ({args.channel}"
          f"{', recipients' if recipients else ''}): min {min(per_item):.1f} us, "
          f"p25 {statistics.quantiles(per_item, n=4)[0]:.1f} us, median {statistics.median(per_item):.1f} us, "
          f"mean {statistics.mean(per_item):.1f} us")
    if profiler:
        profiler.dump_stats(args.profile)
        print(f"profile written to {args.profile}")


if __name__ == "__main__":
    main()
