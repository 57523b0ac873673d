"""`make run` as a user runs it, with the connection URLs exported (issue 21).

Each stack is the real `make run` (honcho on the repo's Procfile, `--env /dev/null`) started with
CELERY_BROKER_URL, DATABASE_URL and REDIS_URL exported to this test run's vhost, database and Redis
db, its own ports (WEB_PORT, FLOWER_PORT, SMTP_SINK_PORT) and mail directory, and a dotenv file of its
own (NOTIFIER_DOTENV, so the repo's .env is neither read nor written). Two stacks run side by side
to keep the suite short: one healthy, with Flower's credentials only in the dotenv file; one whose
Flower cannot start. The second has a vhost of its own, so each stack's workers deliver what its API
accepted to its own SMTP sink.
"""
from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings

from tests.stack import wait_for

# django_db: has pytest-django create the test database; the tests reach it through the stacks.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("web", "worker-high", "worker-normal", "worker-low", "worker-maintenance", "beat", "flower", "smtp")
USER, PASSWORD = "ops", "flower-from-dotenv"
UP_FOR = 30.0  # the issue: `make run` died within 7 s
RABBITMQ_API, RABBITMQ_AUTH = "http://127.0.0.1:15672/api", ("guest", "guest")
_STARTED = re.compile(r"system\s+\| ([\w-]+)\.1 started \(pid=(\d+)\)")
_STOPPED = re.compile(r"system\s+\| ([\w-]+)\.1 stopped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every live process under ``root``, by pid, with its start time (to tell a reused pid)."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[1] != "Z":
                children.setdefault(stat[0], []).append((int(entry), stat[2]))
    found, todo = {}, [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            found[pid] = started
            todo.append(pid)
    return found


def still_running(processes: dict[int, str]) -> dict[int, str]:
    alive = {}
    for pid, started in processes.items():
        stat = _proc_stat(pid)
        if stat and stat[1] != "Z" and stat[2] == started:
            alive[pid] = started
    return alive


class MakeRun:
    """`make run` in a session of its own, its output in a file."""

    def __init__(self, workdir: Path, *, vhost: str, dotenv: dict[str, str], env: dict[str, str] | None = None):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mail = workdir / "mail"
        self.log = workdir / "make-run.log"
        self.web_port, self.flower_port, self.smtp_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.dotenv = workdir / "dotenv"
        self.dotenv.write_text("".join(f"{k}={v}\n" for k, v in
                                       {"DEBUG": "1", "SECRET_KEY": "make-run-test", **dotenv}.items()))
        # A user's shell: no DJANGO_SETTINGS_MODULE or test settings, no make variables of `make test`.
        self.env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "USER", "LOGNAME", "TMPDIR")
                    if k in os.environ}
        self.env.update({
            "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}",
            "DATABASE_URL": os.environ["DATABASE_URL"],  # the test database (config.settings.test)
            "REDIS_URL": settings.REDIS_URL,
            "NOTIFIER_DOTENV": str(self.dotenv),
            "WEB_PORT": str(self.web_port), "FLOWER_PORT": str(self.flower_port),
            "SMTP_SINK_PORT": str(self.smtp_port), "SMTP_SINK_DIR": str(self.mail),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
            "WEB_CONCURRENCY": "1",  # one web process is enough here; the machine is shared
            **(env or {}),
        })
        self.popen: subprocess.Popen | None = None
        self.started_at = 0.0
        self.seen: dict[int, str] = {}

    def start(self) -> MakeRun:
        self.popen = subprocess.Popen(
            ["make", "run", f"TEST_NS={os.environ.get('NOTIFIER_TEST_NAMESPACE', 'test')}"], cwd=ROOT,
            env=self.env, stdin=subprocess.DEVNULL, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.started_at = time.monotonic()
        return self

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def started(self) -> dict[str, int]:
        return {name: int(pid) for name, pid in _STARTED.findall(self.output())}

    def stopped(self) -> set[str]:
        return set(_STOPPED.findall(self.output()))

    def running(self) -> set[str]:
        """Procfile processes started and not stopped, while `make run` itself is running."""
        if self.popen is None or self.popen.poll() is not None:
            return set()
        self.seen.update(descendants(self.popen.pid))
        return set(self.started()) - self.stopped()

    def wait_until_up_for(self, seconds: float) -> None:
        """Wait until every process has been started and ``seconds`` have passed since `make run` began."""
        wait_for(lambda: set(self.started()) == set(PROCESSES) or self.popen.poll() is not None,
                 timeout=180, interval=0.5, message="make run to start every process")
        while time.monotonic() - self.started_at < seconds:
            assert self.running() == set(PROCESSES), self.output()[-6000:]
            time.sleep(1)

    def wait_until_answering(self) -> None:
        def answers():
            assert self.popen.poll() is None, f"make run exited:\n{self.output()[-6000:]}"
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=120, interval=0.5, message=f"the API on port {self.web_port}")

    def interrupt(self, timeout: float = 60.0) -> None:
        """Ctrl-C, as in a terminal: SIGINT to `make run`'s process group; wait for it to end."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.seen.update(descendants(self.popen.pid))
        os.killpg(self.popen.pid, signal.SIGINT)
        self.popen.wait(timeout)

    def kill_everything(self) -> None:
        """Whatever is left (a failed test): every process ever seen under `make run`, and its group."""
        if self.popen is not None and self.popen.poll() is None:
            self.seen.update(descendants(self.popen.pid))
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(10)
        for pid in still_running(self.seen):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def mails(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in sorted(self.mail.glob("*.eml"))]


def send_email_and_wait_until_sent(stack: MakeRun, key: str, to: str) -> dict:
    """Through the stack's HTTP API, as a client would; returns the notification once `sent`."""
    auth = {"Authorization": f"Bearer {key}"}
    subject = f"make run {stack.web_port}"
    response = httpx.post(f"{stack.url}/api/v1/notifications/email/", headers=auth, timeout=30,
                          json={"to": to, "subject": subject, "body": "Sent through make run."})
    assert response.status_code == 202, response.text
    notification_id = response.json()["id"]

    def sent():
        body = httpx.get(f"{stack.url}/api/v1/notifications/{notification_id}/", headers=auth, timeout=30).json()
        assert body["status"] not in ("failed", "cancelled", "expired", "suppressed"), body
        return body if body["status"] == "sent" else None

    notification = wait_for(sent, timeout=120, interval=0.5, message=f"notification {notification_id} sent")
    mail = wait_for(lambda: [m for m in stack.mails() if m["Subject"] == subject], timeout=30,
                    message="the mail in the stack's SMTP sink")
    assert mail[0]["To"] == to
    return notification


def assert_stops_on_ctrl_c(stack: MakeRun) -> None:
    stack.interrupt()
    assert stack.popen.returncode is not None
    assert stack.stopped() == set(PROCESSES), stack.output()[-4000:]
    # The optional processes forward the signal and end with their command: honcho had no need to kill them.
    assert "sending SIGKILL to flower" not in stack.output()
    assert "sending SIGKILL to smtp" not in stack.output()
    wait_for(lambda: not still_running(stack.seen), timeout=30, interval=0.5,
             message="every process of make run to end")


@pytest.fixture(scope="module")
def make_runs(tmp_path_factory, django_db_setup, django_db_blocker):
    """Two `make run` stacks started together: the healthy one and the one whose Flower cannot start."""
    from apps.apikeys.services import api_key_create
    from apps.notifications.categories import ensure_default_categories

    with django_db_blocker.unblock():
        ensure_default_categories()
        key = api_key_create(name="make-run-stack").raw
    vhost = f"{settings.TEST_VHOST}_makerun"
    vhost_url = f"{RABBITMQ_API}/vhosts/{quote(vhost, safe='')}"
    httpx.delete(vhost_url, auth=RABBITMQ_AUTH, timeout=30)
    assert httpx.put(vhost_url, auth=RABBITMQ_AUTH, timeout=30).status_code in (201, 204)
    base = tmp_path_factory.mktemp("make-run")
    healthy = MakeRun(base / "healthy", vhost=settings.TEST_VHOST,
                      dotenv={"FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}"})
    # No Flower credentials anywhere: the dotenv has none (make run writes one into it) and the
    # environment sets the variable empty, which the dotenv never overrides.
    no_flower = MakeRun(base / "no-flower", vhost=vhost, dotenv={}, env={"FLOWER_BASIC_AUTH": ""})
    try:
        healthy.start()
        no_flower.start()
        yield {"healthy": healthy, "no_flower": no_flower, "key": key}
    finally:
        for stack in (healthy, no_flower):
            try:
                stack.interrupt()
            except subprocess.TimeoutExpired:
                pass
            stack.kill_everything()
        httpx.delete(vhost_url, auth=RABBITMQ_AUTH, timeout=30)
        with django_db_blocker.unblock():
            from django.core.management import call_command

            call_command("flush", interactive=False, verbosity=0)  # what a transactional test leaves


def test_make_run_with_the_urls_exported_keeps_every_process_up_sends_email_and_stops_on_ctrl_c(make_runs):
    """The issue: with CELERY_BROKER_URL exported, Flower did not see FLOWER_BASIC_AUTH from .env,
    exited, and honcho stopped the API and the workers with it within seconds."""
    stack = make_runs["healthy"]
    stack.wait_until_up_for(UP_FOR)
    assert stack.running() == set(PROCESSES)
    assert "!!! flower" not in stack.output()

    # Flower runs with the credentials that are only in the dotenv file.
    flower = f"http://127.0.0.1:{stack.flower_port}"

    def flower_answers():  # on a busy machine Flower may still be starting after the 30 s
        try:
            return httpx.get(f"{flower}/healthcheck", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(flower_answers, timeout=90, interval=0.5, message="flower to answer")
    assert httpx.get(f"{flower}/api/workers", timeout=15).status_code == 401
    assert httpx.get(f"{flower}/api/workers", auth=(USER, PASSWORD), timeout=15).status_code == 200

    stack.wait_until_answering()
    notification = send_email_and_wait_until_sent(stack, make_runs["key"], "new-user@example.com")
    assert notification["channel"] == "email"
    assert stack.running() == set(PROCESSES)

    assert_stops_on_ctrl_c(stack)


def test_make_run_keeps_the_api_workers_and_beat_up_and_says_so_loudly_when_flower_cannot_start(make_runs):
    stack = make_runs["no_flower"]
    stack.wait_until_up_for(UP_FOR)
    # Flower has failed (on a busy machine it may take longer than the 30 s to get that far) ...
    wait_for(lambda: "!!! flower exited with code 1" in stack.output(), timeout=90, interval=0.5,
             message="flower's failure to be reported")
    # ... and every process is still there: Flower's supervisor keeps trying, honcho stopped nothing.
    assert stack.running() == set(PROCESSES)
    output = stack.output()
    assert "!!! flower is optional: the rest of the stack keeps running without it." in output
    banner_fix = [line for line in output.splitlines() if "!!! To fix:" in line]
    assert banner_fix and "FLOWER_BASIC_AUTH=user:password" in banner_fix[0]
    assert re.search(r"!!!\s+Flower needs FLOWER_BASIC_AUTH", output)  # its own last words, repeated
    assert "flower.1 stopped" not in output

    stack.wait_until_answering()
    send_email_and_wait_until_sent(stack, make_runs["key"], "still-delivered@example.com")
    assert stack.running() == set(PROCESSES)

    assert_stops_on_ctrl_c(stack)
