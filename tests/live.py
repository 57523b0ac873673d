"""A real gunicorn serving the API for tests, on a free port, against the test database.

    server = Gunicorn(tmp_path, workers=2).start()       # config.wsgi on gthread workers
    server = Gunicorn(tmp_path, asgi=True).start()       # config.asgi on the ASGI worker (Procfile)
    httpx.get(server.url + "/api/v1/notifications/")
    server.stop()

The access log records the serving worker's pid (``%(p)s``), so a test can see
that both workers answered.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, workdir: Path, *, workers: int = 2, threads: int = 8, env: dict[str, str] | None = None,
                 asgi: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers, self.threads, self.asgi = workers, threads, asgi
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONPATH": str(ROOT),
                    **(env or {})}
        self.log = self.workdir / f"gunicorn-{self.port}.log"
        self.popen: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "Gunicorn":
        app, worker_class = ("config.asgi:application", "asgi") if self.asgi else ("config.wsgi:application", "gthread")
        args = [
            GUNICORN, app, "-c", str(ROOT / "config" / "gunicorn.py"),
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--threads", str(self.threads),
            "--worker-class", worker_class, "--access-logfile", "-", "--error-logfile", "-",
            "--access-logformat", 'pid=%(p)s status=%(s)s "%(r)s"', "--timeout", "60",
        ]
        self.popen = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=self.log.open("wb"),
                                      stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.output()}")
            try:
                if httpx.get(self.url + "/api/v1/notifications/", timeout=2).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"gunicorn did not answer within {timeout}s:\n{self.output()}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        self.popen = None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def worker_pids(self) -> list[int]:
        """Pids of the worker processes (the master's children)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.popen.pid:
                pids.append(int(stat.parent.name))
        return pids

    def serving_pids(self) -> set[str]:
        """Pids of the workers that answered API requests (from the access log)."""
        return {line.split("pid=", 1)[1].split()[0] for line in self.output().splitlines()
                if "pid=" in line and "/api/v1/" in line}
