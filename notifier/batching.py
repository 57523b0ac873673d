"""One background thread per process, started on first use and again after a fork.

The web process's publisher and group committer each gather work from many request threads
and hand it to one thread of their own. A process forked after that thread started (gunicorn's
workers, Celery's prefork pool) has the parent's object but not its thread: ``ensure()`` starts a
new one in the child.
"""
from __future__ import annotations

import os
import threading
from typing import Callable


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
