"""The stack of ``make cluster-test`` (notifier/devtools/cluster_scenario.py): what a scenario is, and its
processes (the API, the workers, beat) started against a RabbitMQ cluster, each in its own process group."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FAULTS = ("broker", "worker", "none")


@dataclass
class Scenario:
    fault: str = "broker"
    notifications: int = 100_000
    batch_size: int = 1000
    clients: int = 4
    fault_at: float = 0.4  # inject the fault once this share of the notifications is accepted
    provider: str = "smtp"  # smtp: counted by smtp_counter; null: no SMTP, re-claims only
    chunk_size: int = 1000  # NOTIFIER_CHUNK_SIZE
    worker_concurrency: int = 2
    web_workers: int = 2
    # A row left `sending` by a killed worker is put back after this (the task time limit is below it).
    claim_timeout: float = 20.0
    sweep_interval: int = 5  # NOTIFIER_SWEEP_INTERVAL (whole seconds)
    drain_timeout: float = 900.0
    ready_timeout: float = 180.0




class Processes:
    """Stack processes, each in its own process group, logging to ``workdir/<name>.log``."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir, self.env = workdir, env
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        with (self.workdir / f"{name}.log").open("ab") as log:
            popen = subprocess.Popen(args, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = popen
        return popen

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.procs[name].pid, sig)
        except ProcessLookupError:
            pass

    def check_alive(self, *names: str) -> None:
        for name in names or list(self.procs):
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited ({self.procs[name].returncode}):\n{self.output(name)}")

    def output(self, name: str, tail: int = 60) -> str:
        try:
            return "\n".join((self.workdir / f"{name}.log").read_text(errors="replace").splitlines()[-tail:])
        except OSError:
            return ""

    def stop_all(self, timeout: float = 20.0) -> None:
        for name in self.procs:
            self.kill(name, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for popen in self.procs.values():
            try:
                popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for name, popen in self.procs.items():
            self.kill(name, signal.SIGKILL)  # anything left in the group
            try:
                popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()


def database_url() -> str:
    """The URL of Django's default database (what the stack processes must use)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = ""
    if db.get("USER"):
        auth = quote(db["USER"], safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else "") + "@"
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def stack_env(cluster, scenario: Scenario, workdir: Path, smtp_port: int | None) -> dict[str, str]:
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFIER_", "CELERY_", "DJANGO_"))}
    prom = workdir / "prometheus"
    prom.mkdir(exist_ok=True)
    time_limit = max(5, int(scenario.claim_timeout * 0.75))
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": cluster.broker_url,
        "NOTIFIER_QUEUE_TYPE": "quorum",
        "NOTIFIER_EMAIL_PROVIDERS": "smtp" if scenario.provider == "smtp" else "null",
        "NOTIFIER_SMS_PROVIDERS": "null",
        "NOTIFIER_PUSH_PROVIDERS": "null",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port or 1),
        "NOTIFIER_CHUNK_SIZE": str(scenario.chunk_size),
        "NOTIFIER_CLAIM_TIMEOUT": str(scenario.claim_timeout),
        "CELERY_TASK_TIME_LIMIT": str(time_limit),
        "CELERY_TASK_SOFT_TIME_LIMIT": str(max(3, time_limit - 3)),
        "NOTIFIER_SWEEP_INTERVAL": str(scenario.sweep_interval),
        "NOTIFIER_REQUEUE_AFTER": str(max(30.0, scenario.claim_timeout * 2)),
        "NOTIFIER_INBOX_PUBSUB_PREFIX": f"notifier:cluster-{secrets.token_hex(4)}:inbox:",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
        "LOG_FORMAT": "plain",
        "LOG_LEVEL": "WARNING",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
    })
    return env


def start_stack(procs: Processes, scenario: Scenario, port: int) -> None:
    gunicorn, celery = str(BIN / "gunicorn"), str(BIN / "celery")
    # The Procfile's web set-up (config/gunicorn.py: the ASGI worker), on the scenario's port and processes.
    procs.start("api", [gunicorn, "config.asgi:application", "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}",
                        "--workers", str(scenario.web_workers), "--timeout", "120"])
    worker = [celery, "-A", "config.celery_app", "worker", "--pool", "threads", "-O", "fair", "--without-gossip",
              "--without-mingle", "--loglevel", "WARNING"]
    procs.start("worker-high", [*worker, "-Q", "notifications.high", "-n", "high@cluster", "-c", "2"])
    for host in ("host-a", "host-b"):
        procs.start(f"worker-normal-{host}", [*worker, "-Q", "notifications.normal", "-n", f"normal@{host}",
                                              "-c", str(scenario.worker_concurrency)])
    # beat's jobs (dispatcher, sweep: it puts a dead worker's rows back) run from their own queue
    procs.start("worker-maintenance", [*worker, "-Q", "notifications.maintenance", "-n", "maintenance@cluster",
                                       "-c", "2"])
    procs.start("beat", [celery, "-A", "config.celery_app", "beat", "--scheduler",
                         "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile=", "--loglevel", "WARNING"])


def wait_ready(cluster, procs: Processes, url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        try:
            api = httpx.get(url + "/api/v1/notifications/", timeout=2).status_code == 401
        except httpx.HTTPError:
            api = False
        queues = cluster.queues() if api else {}
        consumers = {name: queues.get(name, {}).get("consumers", 0)
                     for name in ("notifications.high", "notifications.normal", "notifications.maintenance")}
        if api and consumers["notifications.high"] >= 1 and consumers["notifications.normal"] >= 2 \
                and consumers["notifications.maintenance"] >= 1:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stack was not ready in {timeout:.0f}s (API answering: {api}, consumers: "
                               f"{consumers})\n" + "\n".join(f"--- {n}\n{procs.output(n, 15)}" for n in procs.procs))
        time.sleep(1)
