"""Real Celery worker and beat processes for integration tests.

``Stack`` starts them against the test database and vhost (config.settings.test),
waits until each worker answers a ping, and stops every process it started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELERY = str(Path(sys.executable).with_name("celery"))
# The priority queues and beat's maintenance queue: one worker that does everything.
ALL_QUEUES = "notifications.high,notifications.normal,notifications.low,notifications.maintenance"


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Proc:
    def __init__(self, popen: subprocess.Popen, name: str, log: Path):
        self.popen, self.name, self.log = popen, name, log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (worker main process and its pool children)."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            self.kill(signal.SIGKILL)
            return
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait(5)
        self.kill(signal.SIGKILL)  # any orphaned pool child

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def sent_by_beat(beat: Proc, entry: str | None = None) -> list[str]:
    """The names of the entries a beat started with ``loglevel="INFO"`` has sent so far, in order
    (only ``entry``'s when given). Celery logs ``Scheduler: Sending due task <name> (<task>)``."""
    names = [line.split("Sending due task ", 1)[1].split(" (", 1)[0]
             for line in beat.output().splitlines() if "Sending due task " in line]
    return [n for n in names if entry is None or n == entry]


class Stack:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONPATH": str(ROOT),
                    **(env or {})}
        self.procs: list[Proc] = []

    def _start(self, args: list[str], name: str, env: dict[str, str] | None) -> Proc:
        log = self.workdir / f"{name}.log"
        popen = subprocess.Popen(
            args, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(popen, name, log)
        self.procs.append(proc)
        return proc

    def worker(self, queues: str = ALL_QUEUES, concurrency: int = 2, env: dict[str, str] | None = None,
               prefetch: int | None = None, wait: bool = True, pool: str = "prefork") -> Proc:
        name = f"w{len(self.procs)}-{uuid.uuid4().hex[:6]}@test"
        args = [CELERY, "-A", "config.celery_app", "worker", "-Q", queues, "-n", name, "-c", str(concurrency),
                "--pool", pool, "--without-gossip", "--without-mingle", "-l", "WARNING"]
        if prefetch is not None:
            args += ["--prefetch-multiplier", str(prefetch)]
        proc = self._start(args, name, env)
        if wait:
            self.wait_ready(proc)
        return proc

    def beat(self, env: dict[str, str] | None = None, scheduler: str = "celery.beat:PersistentScheduler",
             loglevel: str = "WARNING") -> Proc:
        """A beat process. ``loglevel="INFO"`` logs a line for every task it sends (see ``sent_by_beat``)."""
        name = f"beat{len(self.procs)}"
        args = [CELERY, "-A", "config.celery_app", "beat", "-S", scheduler,
                "-s", str(self.workdir / f"{name}-schedule"), "--pidfile=", "-l", loglevel]
        return self._start(args, name, env)

    def python(self, code: str, name: str, env: dict[str, str] | None = None) -> Proc:
        """Run ``code`` in a Python process with Django set up (e.g. a loop calling a service)."""
        prelude = "import django; django.setup()\n"
        return self._start([sys.executable, "-c", prelude + code], name, env)

    def wait_ready_all(self, procs: list[Proc], timeout: float = 30.0) -> None:
        """Wait for workers started with ``wait=False`` (they start in parallel)."""
        for proc in procs:
            self.wait_ready(proc, timeout=timeout)

    def wait_ready(self, proc: Proc, timeout: float = 30.0) -> None:
        from config.celery_app import app

        def answered():
            if not proc.alive():
                raise AssertionError(f"worker {proc.name} exited:\n{proc.output()}")
            return app.control.ping(destination=[proc.name], timeout=0.5)

        wait_for(answered, timeout=timeout, interval=0.1, message=f"worker {proc.name} to answer a ping")

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
