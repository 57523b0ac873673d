"""Work of many request threads gathered on one background thread of the process.

``ProcessThread``: one daemon thread per process, started on first use and again after a fork. The web
process's publisher and group committer each gather work from many request threads and hand it to one
thread of their own; a process forked after that thread started (gunicorn's workers, Celery's prefork
pool) has the parent's object but not its thread, and ``ensure()`` starts a new one in the child.

``CoalescingPublisher``: one message for the notifications of many concurrent requests. A
single-notification request used to publish its own task (one message, one broker confirm, and on the
worker one claim and one result write for one row). Under load many requests commit within the same
few milliseconds; the publisher thread collects their ids for a window
(``NOTIFIER_PUBLISH_COALESCE_MS``) and publishes them together (still one message per chunk per
priority, still confirmed). A request of Django's single path waits for the confirm of the publish that
carried its ids (at most ``NOTIFIER_PUBLISH_WAIT`` seconds); the group committer does not wait
(``submit(wait=None)``): its requests are answered once their rows are committed, and their publish
follows here. Either way a publish failure is handled as before: the rows are marked due and the
dispatcher republishes them. A submit may name ``pending`` keys (the ``PendingPublish`` entries written
with the rows): once its items are published (or marked due) they are handed to ``settle``, in one call
for every flush of ``settle_every`` seconds (the web process: ``NOTIFIER_PUBLISH_SETTLE_MS``, well under the
grace; one DELETE per flush was a round trip per group of single creates) and before the thread idles. Ids still waiting here when a process dies are rows left ``queued`` with their entries, which
the dispatcher republishes after ``NOTIFIER_PUBLISH_GRACE`` seconds (``lifecycle.recover_unconfirmed_publishes``).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from notifier.context import get_request_id, reset_request_id, set_request_id

logger = logging.getLogger(__name__)


class ProcessThread:
    """A daemon thread running ``target``, (re)started by ``ensure()`` in whichever process calls it."""

    def __init__(self, target: Callable[[], None], *, name: str):
        self.target = target
        self.name = name
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def running(self) -> bool:
        """The thread runs in this process (not only in the parent this process was forked from)."""
        return self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()

    def ensure(self) -> None:
        """Start the thread unless it runs in this process (call it under the owner's lock)."""
        if not self.running():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self.target, name=self.name, daemon=True)
            self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self.running():
            self._thread.join(timeout)


class _Ticket:
    __slots__ = ("items", "pending", "done", "request_id", "waits")

    def __init__(self, items, pending=(), waits=False):
        self.items = items
        self.pending = pending
        self.waits = waits  # a caller waits for this ticket's publish
        self.done = threading.Event()
        self.request_id = get_request_id()  # the submitting request's, for the task headers


class ArrivalRate:
    """Items per second arriving at a thread that takes them in groups: a moving average over the takes
    (each take halves the weight of the ones before). One thread's own; no lock."""

    __slots__ = ("per_second", "last_take")

    def __init__(self):
        self.per_second = 0.0
        self.last_take = float("-inf")  # the first take counts as a trickle

    def took(self, count: int, now: float) -> None:
        rate = count / max(now - self.last_take, 0.001)
        self.per_second, self.last_take = (self.per_second + rate) / 2, now


class CoalescingPublisher:
    """Collects (id, priority) pairs from many threads and hands them to ``publish`` in one call.

    ``publish`` returns False when the items are neither published nor marked due (anything else: they
    are safe); ``settle`` then gets the ``pending`` keys of the safe ones. ``on_idle`` runs on the thread
    once it has had nothing to do for ``idle_after`` seconds, and when drained (e.g. close its
    database connection, kept while it works). ``settle`` gets the keys of all the flushes of up to
    ``settle_every`` seconds in one call (0: after each flush), and whatever is left before ``on_idle``.
    ``lazy_window``: the window of a flush nobody waits for (``submit(wait=None)``: the group committer's
    requests are answered already); as soon as a caller waits, the flush keeps to ``window``.
    ``lazy_min_rate``: the lazy window only while items arrive at least this fast (items per second,
    estimated from the flushes before): under load it makes fewer, larger messages; a trickle, which it
    would not gather anyway, is published after the short window.
    """

    def __init__(self, publish: Callable[[list[tuple[Any, str]]], Any], *, window: float, max_items: int = 500,
                 settle: Callable[[list], None] | None = None, on_idle: Callable[[], None] | None = None,
                 idle_after: float = 5.0, settle_every: float = 0.0, lazy_window: float | None = None,
                 lazy_min_rate: float = 0.0):
        self.publish = publish
        self.settle = settle
        self.settle_every = settle_every
        self._unsettled: list = []  # keys of safe items, for the next settle (this thread's own)
        self._settle_at = 0.0
        self.on_idle = on_idle
        self.idle_after = idle_after
        self.window = window
        self.lazy_window = window if lazy_window is None else max(window, lazy_window)
        self.lazy_min_rate = lazy_min_rate
        self._arrivals = ArrivalRate()  # over the flushes
        self.max_items = max_items
        self._lock = threading.Lock()
        self._pending: list[_Ticket] = []
        self._flushing: list[_Ticket] = []
        self._wake = threading.Event()
        self._release = threading.Event()  # drain asks the thread to run on_idle now
        self._released = threading.Event()
        self._thread = ProcessThread(self._run, name="notifier-publisher")

    def submit(self, items: list[tuple[Any, str]], *, wait: float | None = None, pending=()) -> bool:
        """Queue ``items`` for the next flush; wait up to ``wait`` seconds for it. True if it was published.

        ``pending``: keys handed to ``settle`` once the items are safe (with no items: at the next flush)."""
        ticket = _Ticket(list(items), tuple(pending), waits=wait is not None)
        with self._lock:
            self._thread.ensure()
            self._pending.append(ticket)
            count = sum(len(t.items) for t in self._pending)
        if count >= self.max_items:
            self._wake.set()  # a full chunk: no reason to wait for the window
        elif len(self._pending) == 1:
            self._wake.set()  # start the window
        elif ticket.waits and self.lazy_window > self.window:
            self._wake.set()  # a lazy window may be running: this caller's flush keeps to the short one
        if wait is None:
            return False
        return ticket.done.wait(wait)

    def _run(self) -> None:
        idle = True
        while True:
            timeout = None if idle else self.idle_after
            if self._unsettled:
                timeout = max(0.0, self._settle_at - time.monotonic())
            if not self._wake.wait(timeout):
                if self._unsettled:
                    self._settle(force=True)
                    continue
                self._idle()  # nothing for idle_after seconds
                idle = True
                continue
            idle = False
            self._wake.clear()
            started = time.monotonic()
            lazy = self.lazy_window if self._arrivals.per_second >= self.lazy_min_rate else self.window
            while True:  # let more requests join, unless a chunk is already full
                with self._lock:
                    count = sum(len(t.items) for t in self._pending)
                    waits = any(t.waits for t in self._pending)
                remaining = started + (self.window if waits else lazy) - time.monotonic()
                if count >= self.max_items or remaining <= 0:
                    break
                self._wake.wait(remaining)
                self._wake.clear()
            with self._lock:
                tickets, self._pending = self._pending, []
                self._flushing = tickets
            self._arrivals.took(sum(len(t.items) for t in tickets), time.monotonic())
            if tickets:
                self._flush(tickets)
            with self._lock:
                self._flushing = []
            if self._release.is_set() and not self._pending:
                self._release.clear()
                self._idle()
                idle = True
                self._released.set()

    def _idle(self) -> None:
        self._settle(force=True)
        if self.on_idle is not None:
            try:
                self.on_idle()
            except Exception:  # noqa: BLE001
                logger.exception("on_idle failed")

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far has been published (or has failed and been handled).

        For a process about to exit: what is still here would otherwise wait for the dispatcher's
        recovery. Then the thread runs ``on_idle`` (its database connection is closed). True if
        nothing is left within ``timeout`` seconds.
        """
        with self._lock:
            if not self._thread.running():
                return not self._pending
            tickets = [*self._flushing, *self._pending]
        self._wake.set()  # no reason to wait for the window
        deadline = time.monotonic() + timeout
        done = all(ticket.done.wait(max(0.0, deadline - time.monotonic())) for ticket in tickets)
        if done:
            self._released.clear()
            self._release.set()
            self._wake.set()
            self._released.wait(max(0.0, deadline - time.monotonic()))
        return done

    def _flush(self, tickets: list[_Ticket]) -> None:
        items = [item for t in tickets for item in t.items]
        # The message carries the request id of the request(s) whose notifications it holds.
        request_ids = list(dict.fromkeys(t.request_id for t in tickets if t.request_id))
        token = set_request_id("+".join(request_ids)[:128] or None)
        safe = True  # with no items (only keys to settle) there is nothing to publish
        try:
            if items:
                safe = self.publish(items) is not False
        except Exception:  # noqa: BLE001 - `publish` handles and logs its own failures; never kill the thread
            logger.exception("coalesced publish of %d notifications failed", len(items))
            safe = False
        finally:
            reset_request_id(token)
            for ticket in tickets:
                ticket.done.set()  # published: a waiting request need not wait for the settle as well
        keys = [key for t in tickets if safe or not t.items for key in t.pending]
        if keys and self.settle is not None:
            if not self._unsettled:
                self._settle_at = time.monotonic() + self.settle_every
            self._unsettled.extend(keys)
            self._settle()

    def _settle(self, *, force: bool = False) -> None:
        """Hand the keys gathered so far to ``settle`` (in one call) once ``settle_every`` has passed."""
        if not self._unsettled or (not force and time.monotonic() < self._settle_at):
            return
        keys, self._unsettled = self._unsettled, []
        try:
            self.settle(keys)
        except Exception:  # noqa: BLE001 - never kill the thread
            logger.exception("settle failed")
