"""Group commit of single creates: the notifications of concurrent requests in one round of work.

Each single-notification request used to run, on its own connection, the
suppression-list query, its own INSERT (its own commit and WAL flush) and a
publish. Under load, many requests of a process are waiting on the database or
the broker at the same moment. Request threads now validate and authorize
themselves, then hand their specs to the process's committer thread and wait.
The committer takes every spec that arrived while it was busy and, for the
whole group:

1. runs the acceptance policy once (one suppression query, one preferences
   read, one frequency-cap script call);
2. inserts every row and first event in one statement (one commit; more than
   ``bulk.SMALL_BATCH`` rows go by COPY in one transaction);
3. counts metrics and logs one line per request, under that request's id;
4. hands the queued ones to the process's publisher thread, one confirmed
   message per priority (which marks them due for the dispatcher if the broker
   fails, as before);

and wakes each request with its own notifications: a 202 means the row is
committed. The committer does not wait for the broker's confirm: under load
RabbitMQ confirms a persistent message to a busy classic queue only once a
worker has acknowledged it, so each request would wait for its own delivery.
The group's INSERT also writes a ``PendingPublish`` entry, which the publisher
thread deletes once the broker has confirmed the group's message: a publish
lost with its process leaves the entry, and the dispatcher republishes the
rows ``NOTIFIER_PUBLISH_GRACE`` seconds after their commit;
``NOTIFIER_ANSWER_AFTER_CONFIRM`` makes the requests wait for the confirm too.

While requests arrive fast enough that a few milliseconds gather more of them
(``NOTIFIER_GROUP_COMMIT_GATHER_MS``, 4: at least one more expected at the
committer's recent rate), the committer lets the oldest pending request wait
that long before it takes the group: most of a group's cost (the round trips,
the statement's parse and plan, the commit, the message) is per group, and
at 1,000 singles/s groups of 3.6 requests became groups of 4.3-5.1, for about
14 % less CPU in the web processes and 13 % less in PostgreSQL
(docs/performance.md). A trickle, and a lone request, is taken at once.

Failures stay with the requests they belong to. If the group's policy step
fails, each request is created on its own as before (and gets its own
exception); if the group's insert fails, each request's rows are inserted on
their own, with the policy verdicts already made (so a frequency-cap slot is not
taken twice), and only the requests whose insert fails get the error.

Requests inside a transaction (``Idempotency-Key``: the response is stored in
the same transaction as the rows) do not use the committer: see
``notification_create_single``.
"""
from __future__ import annotations

import logging
import select
import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from apps.ops.dbrouter import note_api_key_writes
from notifier.batching import ArrivalRate, ProcessThread
from notifier.context import reset_request_id, set_request_id

from .. import lifecycle, outbox, policy, store
from ..models import Notification, Status
from ..specs import NotificationSpec
from .create import KeyRef, notifications_create
from .items import item_validator, recipients_for_projects
from .tickets import ExpressTicket, Ticket

logger = logging.getLogger(__name__)

# The gather window is kept while the committer's recent rate expects at least this many more requests in it.
_GATHERS = 1.0
# ... and while the committer last took a group less than this many windows ago.
_IDLE_WINDOWS = 10

# A connection that served a group this recently is not health-checked again before the next one
# (only looked at: ``closed_by_server``).
_HEALTHY_FOR = 1.0


def closed_by_server(connection) -> bool:
    """Whether PostgreSQL has closed this idle psycopg connection, or said something unasked (a
    terminating backend sends its FATAL error, then the socket's end): the socket has something to
    read. One ``select`` with no wait, not a round trip: after a restart or a failover every web
    process's first group then runs on a new connection instead of failing its requests with a 500."""
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):  # closed already, or no socket
        return True
    return bool(readable)


class GroupCommitter:
    """A per-process thread that creates the specs of many request threads together."""

    def __init__(self, *, max_items: int = 500, wait: float = 60.0, gather: float = 0.0):
        self.max_items = max_items
        self.wait = wait  # a request gives up (500) after this long; the committer never hangs that long
        self.gather = gather  # seconds the oldest pending request may wait for others under load
        self._arrivals = ArrivalRate()  # requests per second, over the groups taken
        self._first_at = 0.0  # when the oldest pending request arrived
        self._lock = threading.Lock()
        self._pending: list[Ticket] = []
        self._wake = threading.Event()
        self._thread = ProcessThread(self._run, name="notifier-group-commit")
        self._stopping = False

    def submit(self, specs: list, api_key) -> list:
        """Create ``specs`` (validated) for ``api_key``; returns their notifications or raises this request's error."""
        ticket = Ticket(list(specs), api_key.pk if api_key is not None else None)
        self._enqueue(ticket)
        if not ticket.done.wait(self.wait):
            raise RuntimeError("the group committer did not answer in time")
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def submit_express(self, ticket: ExpressTicket) -> None:
        """Queue an event loop's request; its future is resolved (from this thread) once it is done."""
        self._enqueue(ticket)

    def _enqueue(self, ticket: Ticket | ExpressTicket) -> None:
        with self._lock:
            self._thread.ensure()
            if not self._pending:
                self._first_at = time.monotonic()  # the oldest pending request: the gather counts from it
            self._pending.append(ticket)
        self._wake.set()

    def _gather(self) -> None:
        """Under load, let the oldest pending request wait up to ``gather`` for others to join its group."""
        delay = self.gather_delay(time.monotonic())
        if delay > 0:
            time.sleep(delay)

    def gather_delay(self, now: float) -> float:
        """Seconds the committer waits, at ``now``, before it takes the pending requests: none for a trickle
        or after a pause, else until the oldest pending one has waited ``gather``."""
        if not self.gather or self._stopping or self._arrivals.per_second * self.gather < _GATHERS:
            return 0.0
        if now - self._arrivals.last_take > _IDLE_WINDOWS * self.gather:
            return 0.0  # idle a while: whatever the rate was, this request came alone
        with self._lock:
            return max(self._first_at + self.gather - now, 0.0) if self._pending else 0.0

    def _take(self) -> list[Ticket]:
        with self._lock:
            taken, count = 0, 0
            for ticket in self._pending:
                size = len(ticket.specs) if ticket.specs is not None else 1  # an express ticket: one item
                if taken and count + size > self.max_items:
                    break
                taken += 1
                count += size
            tickets, self._pending = self._pending[:taken], self._pending[taken:]
            now = time.monotonic()
            if self._pending:
                self._first_at = now  # the rest waited for this group; they do not wait again
            else:
                self._wake.clear()
        if tickets:
            self._arrivals.took(len(tickets), now)
        return tickets

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the pending requests, close the thread's database connection and end the thread."""
        if not self._thread.running():
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        self._stopping = False
        last_ok = float("-inf")  # when a group last ended without an error
        while True:
            self._wake.wait()
            self._gather()
            tickets = self._take()
            if not tickets:
                if self._stopping:
                    connections.close_all()
                    return
                continue
            try:
                # What Django does around each request: drop a connection past CONN_MAX_AGE or broken
                # by an error, and health-check the kept one before its first query (once per group);
                # but not a connection that served the previous group a moment ago: under load that
                # check is a round trip more for every group, on the path every request waits for.
                close_old_connections()
                db = connections["default"]
                if db.connection is not None and time.monotonic() - last_ok < _HEALTHY_FOR:
                    if closed_by_server(db.connection):
                        db.close()  # PostgreSQL restarted or cut it: the group gets a new connection
                    else:
                        db.health_check_done = True
                group = _prepare(tickets)
                create_group(group)
                last_ok = time.monotonic()
                # Read-your-writes with a read replica (a no-op without one): before the answers leave.
                note_api_key_writes(t.api_key_id for t in group if t.error is None)
            except BaseException as exc:  # noqa: BLE001 - never kill the thread; the requests get the error
                logger.exception("group commit of %d requests failed", len(tickets))
                for ticket in tickets:
                    if not ticket.declined:
                        ticket.error = exc
            finally:
                _finish(tickets)


def _prepare(tickets: list) -> list:
    """Validate and throttle the group's express tickets; the tickets to create (the rest are declined).

    What DRF does for a request before the view, and the view's validation, in the same order of
    outcomes: a request that is invalid or throttled is declined before it takes a throttle token or
    a row, and Django's path then gives it its 400 or 429.
    """
    express = [t for t in tickets if type(t) is ExpressTicket]
    if not express:
        return tickets
    from apps.apikeys.throttling import throttle_many
    from rest_framework.exceptions import ValidationError

    # One recipient query for the group, each request's recipients looked up in its key's project.
    items_by_project: dict[int, list] = {}
    for ticket in express:
        items_by_project.setdefault(ticket.project_id, []).append(ticket.item)
    recipients = recipients_for_projects(items_by_project)
    valid = []
    for ticket in express:
        token = set_request_id(ticket.request_id)
        try:
            validator = item_validator(ticket.channel, recipients=recipients.get(ticket.project_id, {}),
                                       project_id=ticket.project_id)
            ticket.specs = [validator.validate(ticket.item)]
            valid.append(ticket)
        except (ValidationError, RecursionError):
            ticket.declined = True
        except Exception:  # noqa: BLE001 - Django's path answers it, as it would have answered it alone
            logger.warning("express validation failed; handing the request to Django", exc_info=True)
            ticket.declined = True
        finally:
            reset_request_id(token)
    for ticket, allowed in zip(valid, throttle_many([t.api_key for t in valid]) if valid else ()):
        ticket.declined = not allowed
    return [t for t in tickets if not t.declined]


def _finish(tickets: list) -> None:
    """Wake the waiting request threads, and resolve the express futures (one call per event loop)."""
    by_loop: dict[Any, list] = {}
    for ticket in tickets:
        if type(ticket) is ExpressTicket:
            by_loop.setdefault(ticket.future.get_loop(), []).append(ticket)
        else:
            ticket.done.set()
    for loop, express in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, express)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass


def _resolve(tickets: list) -> None:
    for ticket in tickets:
        if not ticket.future.done():  # cancelled when the client went away
            ticket.future.set_result(ticket)


def create_group(tickets: list[Ticket]) -> None:
    """Create every ticket's specs together; set each ticket's ``result`` or ``error`` (not ``done``)."""
    now = timezone.now()
    specs = [spec for ticket in tickets for spec in ticket.specs]
    try:
        policy.at_acceptance(specs, now)
    except Exception:  # noqa: BLE001 - then each request on its own, with its own outcome
        logger.warning("acceptance checks failed for a group of %d requests; creating each alone",
                       len(tickets), exc_info=True)
        for ticket in tickets:
            _alone(ticket, lambda t: notifications_create(specs=t.specs, api_key=KeyRef(t.api_key_id)))
        return
    created: list[Ticket] = []
    pending: list = []  # the PendingPublish entries written with the rows: settled once their publish is confirmed
    try:
        notifications = store.insert_notifications(
            specs=specs, api_key_ids=[t.api_key_id for t in tickets for _ in t.specs], now=now, pending=pending)
    except Exception:  # noqa: BLE001 - find the requests whose rows fail; the others are created
        logger.warning("group insert of %d requests failed; inserting each alone", len(tickets), exc_info=True)
        close_old_connections()  # a broken connection is replaced before the retries
        pending.clear()
        for ticket in tickets:
            if _alone(ticket, lambda t: store.insert_notifications(specs=t.specs, api_key_ids=[t.api_key_id] * len(t.specs),
                                                            now=now, pending=pending)):
                created.append(ticket)
    else:
        position = 0
        for ticket in tickets:
            ticket.result = notifications[position:position + len(ticket.specs)]
            position += len(ticket.specs)
            created.append(ticket)
    try:
        lifecycle.created_by_requests([(t.request_id, [(n.channel, n.category, n.priority, n.status) for n in t.result],
                                        [n.id for n in t.result]) for t in created])
    except Exception:  # noqa: BLE001 - metrics and logs never fail a committed request
        logger.exception("counting created notifications failed")
    to_publish = [(n.id, n.priority) for t in created for n in t.result if n.status == Status.QUEUED]
    if to_publish:
        # One confirmed publish for the group (it marks the rows due for the dispatcher on failure),
        # under the request ids of the requests whose notifications it carries.
        ids = list(dict.fromkeys(t.request_id for t in created if t.request_id))
        token = set_request_id("+".join(ids)[:128] or None)
        try:
            # The group is the coalesced message. It is published from the publisher thread, so the
            # requests are answered once committed and this thread takes the next group meanwhile.
            outbox.publish(to_publish, coalesce=False, wait=settings.NOTIFIER_ANSWER_AFTER_CONFIRM, pending=pending)
        finally:
            reset_request_id(token)


def _alone(ticket: Ticket, create) -> bool:
    token = set_request_id(ticket.request_id)
    try:
        ticket.result = create(ticket)
        return True
    except Exception as exc:  # noqa: BLE001 - this request's own error, raised in its own thread
        ticket.error = exc
        return False
    finally:
        reset_request_id(token)


_committer: GroupCommitter | None = None
_committer_lock = threading.Lock()


def group_committer_stop() -> None:
    """Stop the process's committer, if it runs, and publish what its requests left to publish
    (process exit; tests: its connection must not outlive the test)."""
    global _committer
    with _committer_lock:
        committer, _committer = _committer, None
    if committer is not None:
        committer.stop()
    outbox.publisher_drain()


def group_committer() -> GroupCommitter | None:
    """The process's committer, or None when ``NOTIFIER_GROUP_COMMIT`` is off."""
    global _committer
    if not settings.NOTIFIER_GROUP_COMMIT:
        return None
    if _committer is None:
        with _committer_lock:
            if _committer is None:
                _committer = GroupCommitter(max_items=settings.NOTIFIER_CHUNK_SIZE,
                                            gather=max(settings.NOTIFIER_GROUP_COMMIT_GATHER_MS, 0.0) / 1000)
    return _committer


def notification_create_single(*, spec: NotificationSpec, api_key=None) -> Notification:
    """One notification (the single endpoint): joins concurrent ones in a group commit when it can.

    Inside a transaction (an ``Idempotency-Key`` request stores its response in the same one) the
    rows must commit with it, so it is created here, on this connection; otherwise the process's
    group committer creates it together with those of concurrent requests (``groupcommit.py``).
    """
    committer = group_committer()
    if committer is None or transaction.get_connection().in_atomic_block:
        return notifications_create(specs=[spec], api_key=api_key)[0]
    return committer.submit([spec], api_key)[0]
