"""Coalescing publishes of small creates: one message for the notifications of many concurrent requests.

A single-notification request used to publish its own task (one message, one
broker confirm, and on the worker one claim and one result write for one
row). Under load many requests commit within the same few milliseconds; a
per-process flusher thread collects their ids for ``NOTIFIER_PUBLISH_COALESCE_MS``
and publishes them together (still one message per chunk per priority, still
confirmed). A request of Django's single path waits for the confirm of the
publish that carried its ids (at most ``NOTIFIER_PUBLISH_WAIT`` seconds); the
group committer does not wait (``submit(wait=None)``): its requests are answered
once their rows are committed, and their publish follows here. Either way a
publish failure is handled as before: the rows are marked due and the
dispatcher republishes them; ids still waiting here when a process dies are
rows left ``queued``, which the sweep republishes (``delivery.sweep``).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from notifier.context import get_request_id, reset_request_id, set_request_id

logger = logging.getLogger(__name__)


class _Ticket:
    __slots__ = ("items", "done", "request_id")

    def __init__(self, items):
        self.items = items
        self.done = threading.Event()
        self.request_id = get_request_id()  # the submitting request's, for the task headers


class CoalescingPublisher:
    """Collects (id, priority) pairs from many threads and hands them to ``publish`` in one call."""

    def __init__(self, publish: Callable[[list[tuple[Any, str]]], None], *, window: float, max_items: int = 500,
                 after_flush: Callable[[], None] | None = None):
        self.publish = publish
        self.after_flush = after_flush  # e.g. close the thread's database connection (used only on failures)
        self.window = window
        self.max_items = max_items
        self._lock = threading.Lock()
        self._pending: list[_Ticket] = []
        self._flushing: list[_Ticket] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = None

    def submit(self, items: list[tuple[Any, str]], *, wait: float | None = None) -> bool:
        """Queue ``items`` for the next flush; wait up to ``wait`` seconds for it. True if it was published."""
        ticket = _Ticket(list(items))
        with self._lock:
            self._ensure_thread()
            self._pending.append(ticket)
            count = sum(len(t.items) for t in self._pending)
        if count >= self.max_items:
            self._wake.set()  # a full chunk: no reason to wait for the window
        elif len(self._pending) == 1:
            self._wake.set()  # start the window
        if wait is None:
            return False
        return ticket.done.wait(wait)

    def _ensure_thread(self) -> None:
        # After a fork (gunicorn or celery prefork) the parent's thread does not exist in the child.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="notifier-publisher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            deadline = time.monotonic() + self.window
            while True:  # let more requests join, unless a chunk is already full
                with self._lock:
                    count = sum(len(t.items) for t in self._pending)
                remaining = deadline - time.monotonic()
                if count >= self.max_items or remaining <= 0:
                    break
                self._wake.wait(remaining)
                self._wake.clear()
            with self._lock:
                tickets, self._pending = self._pending, []
                self._flushing = tickets
            if tickets:
                self._flush(tickets)
            with self._lock:
                self._flushing = []

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far has been published (or has failed and been handled).

        For a process about to exit: what is still here would otherwise wait for the sweep.
        True if nothing is left within ``timeout`` seconds.
        """
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                return not self._pending
            tickets = [*self._flushing, *self._pending]
        self._wake.set()  # no reason to wait for the window
        deadline = time.monotonic() + timeout
        return all(ticket.done.wait(max(0.0, deadline - time.monotonic())) for ticket in tickets)

    def _flush(self, tickets: list[_Ticket]) -> None:
        items = [item for t in tickets for item in t.items]
        # The message carries the request id of the request(s) whose notifications it holds.
        request_ids = list(dict.fromkeys(t.request_id for t in tickets if t.request_id))
        token = set_request_id("+".join(request_ids)[:128] or None)
        try:
            self.publish(items)
        except Exception:  # noqa: BLE001 - `publish` handles and logs its own failures; never kill the thread
            logger.exception("coalesced publish of %d notifications failed", len(items))
        finally:
            reset_request_id(token)
            if self.after_flush is not None:
                try:
                    self.after_flush()
                except Exception:  # noqa: BLE001
                    logger.exception("after_flush failed")
            for ticket in tickets:
                ticket.done.set()
