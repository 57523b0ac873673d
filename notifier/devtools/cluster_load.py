"""The load of ``make cluster-test`` (notifier/devtools/cluster_scenario.py): notifications posted in batches
by parallel clients, and the figures read from the database once they are sent."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from notifier.devtools.cluster_stack import Scenario

@dataclass
class Load:
    accepted: list[str] = field(default_factory=list)
    rejected_items: int = 0
    requests: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0



async def post_all(url: str, key: str, scenario: Scenario, tag: str, on_progress) -> Load:
    """POST every batch (retrying until answered, with its Idempotency-Key) with ``clients`` in parallel."""
    import httpx

    load = Load()
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


def status_counts(key_id: int) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM notifications_notification WHERE api_key_id = %s GROUP BY status",
                       [key_id])
        return dict(cursor.fetchall())


def after_drain_figures(key_id: int, fault_time: float | None) -> dict:
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
