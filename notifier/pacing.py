"""How many of a chunk's messages a worker hands a provider in one call.

A chunk (up to ``NOTIFIER_CHUNK_SIZE`` notifications) goes to the providers in calls sized to
last about ``budget`` seconds each, from the time per message the process has seen for that
channel, so that the worker can record each call's results as it goes and stop at its deadline.
A provider that answers at once (``null``, the in-app inbox, a fast HTTP API) gets the whole
chunk in one call, as before; a relay that takes half a second per mail gets a few at a time.
"""
from __future__ import annotations

import threading

# A channel's first call in a process, before its pace is known.
FIRST_CALL = 10


class Pace:
    """Seconds per message, per channel, seen by this process (shared by its worker threads).

    A slower call is believed at once, a faster one by halves: a provider that slows down
    shrinks the next call straight away, one that recovers grows it back over a few calls.
    """

    def __init__(self, first_call: int = FIRST_CALL):
        self.first_call = first_call
        self._seconds_per_message: dict[str, float] = {}
        self._lock = threading.Lock()

    def size(self, channel: str, remaining: int, budget: float, *, floor: int = 1) -> int:
        """How many of ``remaining`` messages to send in the next call so it takes about ``budget`` s;
        at least ``floor`` (what the provider sends at once) and 1, at most ``remaining``."""
        if remaining <= 0:
            return 0
        per_message = self._seconds_per_message.get(channel)
        if per_message is None:
            wanted = max(self.first_call, floor)
        elif per_message <= 0:
            wanted = remaining
        else:
            wanted = max(int(max(budget, 0.0) / per_message), floor, 1)
        return min(remaining, wanted)

    def observe(self, channel: str, count: int, seconds: float) -> None:
        """A call sent ``count`` messages in ``seconds``."""
        if count <= 0:
            return
        seen = max(seconds, 0.0) / count
        with self._lock:
            known = self._seconds_per_message.get(channel)
            self._seconds_per_message[channel] = seen if known is None or seen > known else (known + seen) / 2

    def seconds_per_message(self, channel: str) -> float | None:
        return self._seconds_per_message.get(channel)

    def reset(self) -> None:
        with self._lock:
            self._seconds_per_message.clear()
