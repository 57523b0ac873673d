"""``manage.py bench --mode broadcast``: one broadcast to a topic of ``--subscribers`` recipients, through a
RUNNING notifier's API, with high-priority singles posted meanwhile (docs/performance.md, "Broadcasts").

The subscribers are recipients of a project of their own (``bench-broadcast``), seeded by COPY once and kept
for the next run (a topic ``bench-<n>`` per size). The run reports how long the API took to answer the
broadcast call, when its last notification was sent (from the call), the singles' request latency and
created→sent, the load average and the CPU of each process group. The run's notifications are deleted
afterwards (``--keep`` keeps them).
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from datetime import datetime, timezone

from django.conf import settings
from django.db import connection, transaction

from notifier import bench
from notifier.bench_clients import RawConnection

PROJECT = "bench-broadcast"
NOTIFICATIONS = "notifications_notification"
EVENTS = "notifications_notificationevent"


def seed_topic(*, project_id: int, subscribers: int, out=print):
    """The topic ``bench-<subscribers>`` of the bench's project with that many subscribers (recipients with an
    email address), made by COPY when missing."""
    from apps.recipients.models import Recipient
    from apps.topics.models import Topic, TopicSubscription
    from apps.topics.selectors import topic_subscriber_count

    key = f"bench-{subscribers}"
    topic, _ = Topic.objects.get_or_create(project_id=project_id, key=key)
    if topic_subscriber_count(topic=topic) == subscribers:
        return topic
    started = time.monotonic()
    prefix = f"{key}-"
    email = Recipient._meta.get_field("email")
    now = datetime.now(timezone.utc)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TopicSubscription._meta.db_table} WHERE topic_id = %s", [topic.pk])
        cursor.execute(f"DELETE FROM {Recipient._meta.db_table} WHERE project_id = %s AND external_id LIKE %s",
                       [project_id, prefix + "%"])
        from apps.notifications.bulk import copy_rows

        copy_rows(Recipient._meta.db_table,
                  ("project_id", "external_id", "email", "phone", "timezone", "locale", "name", "created_at",
                   "updated_at"),
                  ((project_id, f"{prefix}{i}", email.get_db_prep_save(f"b{i}@example.com", connection), "", "UTC",
                    "", "", now, now) for i in range(subscribers)))
        cursor.execute(f"INSERT INTO {TopicSubscription._meta.db_table} (topic_id, recipient_id, created_at) "
                       f"SELECT %s, id, %s FROM {Recipient._meta.db_table} WHERE project_id = %s AND external_id "
                       f"LIKE %s", [topic.pk, now, project_id, prefix + "%"])
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {TopicSubscription._meta.db_table}")
        cursor.execute(f"VACUUM (ANALYZE) {Recipient._meta.db_table}")
    out(f"seeded {subscribers:,} subscribers of topic {key} in {time.monotonic() - started:.1f} s")
    return topic


async def _singles(url: str, raw_key: str, rate: float, stop: threading.Event, latencies: list, errors: dict):
    """High-priority single emails at ``rate`` per second over 4 connections, until ``stop``."""
    path = url.rstrip("/") + "/api/v1/notifications/email/"
    path = path[path.index("/api/"):]
    pace = {"next": time.monotonic()}

    async def client(index: int):
        conn = RawConnection(url, raw_key)
        n = 0
        try:
            while not stop.is_set():
                slot = pace["next"]
                pace["next"] = max(slot, time.monotonic() - 1.0) + 1.0 / rate
                if slot > time.monotonic():
                    await asyncio.sleep(slot - time.monotonic())
                n += 1
                body = json.dumps({"to": f"single{index}-{n}@example.com", "subject": "single", "body": "b",
                                   "priority": "high"}).encode()
                started = time.perf_counter()
                try:
                    code, _ = await conn.post(path, body)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)
                if code != 202:
                    errors[f"HTTP {code}"] = errors.get(f"HTTP {code}", 0) + 1
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(4)))


def _post_json(url: str, raw_key: str, path: str, body: dict) -> tuple[int, dict, float]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), time.perf_counter() - started


def _scalar(sql: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def run(command, opts) -> None:
    """The broadcast benchmark (``command`` is the bench management command, for its output)."""
    from apps.apikeys.models import ApiKey, Project
    from apps.apikeys.services import api_key_create
    from apps.broadcasts.models import Broadcast

    out = command.stdout.write
    subscribers = opts["subscribers"]
    url = opts["url"]
    project, _ = Project.objects.get_or_create(slug=PROJECT, defaults={"name": PROJECT})
    topic = seed_topic(project_id=project.pk, subscribers=subscribers, out=out)
    tag = f"bench-{os.urandom(5).hex()}"
    issued = api_key_create(name=tag, scopes=["notifications:write", "notifications:read"], project=project,
                            rate_limit=100_000, rate_burst=100_000)
    key_id = issued.api_key.pk
    sampler = bench.ProcSampler(root=settings.BASE_DIR, database=settings.DATABASES["default"]["NAME"])
    command._check_reachable(type("Cfg", (), {"url": url})())
    command._vacuum()
    loads = [os.getloadavg()]
    stop = threading.Event()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    singles = threading.Thread(target=lambda: asyncio.run(
        _singles(url, issued.raw, opts["high_rate"], stop, latencies, errors)), daemon=True)
    before = sampler.sample()
    singles.start()
    time.sleep(3)  # the singles' warm-up
    called = datetime.now(timezone.utc)
    code, answer, api_seconds = _post_json(url, issued.raw, "/api/v1/notifications/email/", {
        "topic": topic.key, "subject": "Broadcast", "body": "One call, every subscriber.", "category": "transactional"})
    if code != 202:
        stop.set()
        raise SystemExit(f"the broadcast call answered {code}: {answer}")
    broadcast_id = answer["broadcast_id"]
    deadline = time.monotonic() + opts["drain_timeout"]
    finished = False
    while time.monotonic() < deadline:
        time.sleep(2)
        loads.append(os.getloadavg())
        broadcast = Broadcast.objects.get(pk=broadcast_id)
        if broadcast.status != "expanded":
            continue
        pending = _scalar(f"SELECT count(*) FROM {NOTIFICATIONS} WHERE broadcast_id = %s AND status = ANY(%s)",
                          [broadcast_id, ["queued", "sending", "scheduled"]])[0]
        if pending == 0:
            finished = True
            break
    stop.set()
    singles.join(timeout=30)
    after = sampler.sample()
    broadcast = Broadcast.objects.get(pk=broadcast_id)
    sent, last_sent = _scalar(f"SELECT count(*), max(sent_at) FROM {NOTIFICATIONS} WHERE broadcast_id = %s "
                              f"AND status = 'sent'", [broadcast_id])
    high = _scalar(
        f"SELECT count(*), percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM "
        f"sent_at - created_at)), max(extract(epoch FROM sent_at - created_at)) FROM {NOTIFICATIONS} "
        f"WHERE api_key_id = %s AND broadcast_id IS NULL AND status = 'sent'", [key_id])
    request = bench.summarize(latencies)
    report = {
        "subscribers": subscribers, "created": broadcast.created, "sent": sent, "all_sent": finished,
        "api_answer_s": round(api_seconds, 3),
        "expanded_after_s": round((broadcast.finished_at - called).total_seconds(), 1) if broadcast.finished_at else None,
        "fully_sent_after_s": round((last_sent - called).total_seconds(), 1) if last_sent else None,
        "sent_per_s": round(sent / max((last_sent - called).total_seconds(), 1e-9)) if last_sent else None,
        "singles": {"requests": request, "errors": errors, "sent": high[0],
                    "created_to_sent_p50": high[1][0] if high[1] else None,
                    "created_to_sent_p99": high[1][1] if high[1] else None, "created_to_sent_max": high[2]},
        "load_average_1m": {"before": loads[0][0], "max": max(l[0] for l in loads), "after": os.getloadavg()[0]},
        "cpu": sampler.delta(before, after),
    }
    ApiKey.objects.filter(pk=key_id).update(revoked_at=datetime.now(timezone.utc))
    out(json.dumps(report, indent=2, default=str) if opts["json"] else _format(report))
    if opts["keep"] or not finished:
        command.stderr.write(f"kept the run's rows (api_key_id={key_id}, broadcast {broadcast_id})")
    else:
        command._cleanup(key_id)
        Broadcast.objects.filter(pk=broadcast_id).delete()


def _format(r: dict) -> str:
    def ms(value):
        return "-" if value is None else f"{value * 1000:.0f} ms"

    s = r["singles"]
    lines = [
        f"notifier bench: mode=broadcast subscribers={r['subscribers']:,}",
        f"  API answered the broadcast call in {ms(r['api_answer_s'])}; expanded after {r['expanded_after_s']} s; "
        f"{r['sent']:,} of {r['created']:,} sent, the last {r['fully_sent_after_s']} s after the call "
        f"({r['sent_per_s']}/s){'' if r['all_sent'] else ' - NOT ALL SENT'}",
        f"  high-priority singles meanwhile: n={s['requests']['n']} request p50 {ms(s['requests']['p50'])} p99 "
        f"{ms(s['requests']['p99'])} max {ms(s['requests']['max'])}; created->sent p50 "
        f"{ms(s['created_to_sent_p50'])} p99 {ms(s['created_to_sent_p99'])}; errors {s['errors'] or 'none'}",
        f"  load average (1 min): {r['load_average_1m']['before']:.2f} before, {r['load_average_1m']['max']:.2f} "
        f"at most, {r['load_average_1m']['after']:.2f} after",
        "  CPU seconds (share of one core) until sent:",
    ]
    for group in ("api", "workers", "beat", "postgres", "rabbitmq", "bench"):
        v = r["cpu"].get(group)
        if v:
            lines.append(f"    {group:9s} {v['cpu_seconds']:7.1f} s ({v['cpu_share']:.2f})")
    return "\n".join(lines)
