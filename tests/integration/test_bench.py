"""``manage.py bench`` against a stack started here: gunicorn + a worker with the null provider."""
from __future__ import annotations

import io
import json
import socket
import sys
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.notifications.models import Notification
from tests.stack import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NULL_PROVIDERS = {"NOTIFIER_EMAIL_PROVIDERS": "null", "NOTIFIER_SMS_PROVIDERS": "null"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api_server(stack):
    port = _free_port()
    proc = stack._start(
        [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "4", "--worker-class", "gthread", "--no-control-socket"],
        "gunicorn", NULL_PROVIDERS,
    )

    def answers():
        if not proc.alive():
            raise AssertionError(f"gunicorn exited:\n{proc.output()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/notifications/", timeout=1)
        except urllib.error.HTTPError:
            return True  # 401: it is up
        except OSError:
            return False
        return True

    wait_for(answers, timeout=30, interval=0.2, message="gunicorn to answer")
    return f"http://127.0.0.1:{port}"


def _bench(**options) -> dict:
    out = io.StringIO()
    call_command("bench", json=True, stdout=out, **options)
    return json.loads(out.getvalue())


def test_bench_batch_mode_sends_everything_it_posted_and_reports_sane_figures(stack, api_server):
    stack.worker(concurrency=2, env=NULL_PROVIDERS)

    report = _bench(url=api_server, mode="batch", clients=1, batch_size=100, limit=200, duration=60,
                    drain_timeout=60)

    assert report["accepted"] == 200 and report["rejected_items"] == 0 and report["errors"] == {}
    assert report["by_status"] == {"sent": 200} and report["lost"] == 0 and report["drained"]
    assert report["accepted_per_s"] > 0 and report["sent_per_s_end_to_end"] > 0
    latency = report["created_to_sent_s"]["all"]
    assert latency["sent"] == 200 and 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert report["request_latency_s"]["batch"]["n"] == 2
    assert report["cpu_until_drained"]["api"]["cpu_seconds"] > 0
    assert report["cpu_until_drained"]["workers"]["cpu_seconds"] > 0
    assert report["cpu_probe_ms"]["before"] > 0 and report["cpu_probe_ms"]["after"] > 0
    assert Notification.objects.count() == 0, "the run's rows are deleted afterwards"


def test_bench_mixed_mode_reports_high_priority_latency_separately(stack, api_server):
    stack.worker(concurrency=2, env=NULL_PROVIDERS)

    report = _bench(url=api_server, mode="mixed", clients=1, batch_size=50, high_rate=20, duration=2,
                    drain_timeout=60, keep=True)

    assert report["lost"] == 0 and report["drained"]
    assert report["created_to_sent_s"]["low"]["sent"] >= 50
    assert report["created_to_sent_s"]["high"]["sent"] >= 1
    assert report["request_latency_s"]["single_high"]["n"] >= 1
    assert Notification.objects.filter(priority="high", status="sent").count() == \
        report["created_to_sent_s"]["high"]["sent"]


def test_full_batches_through_the_procfile_web_server_are_all_answered(stack):
    """1,000-item bodies (about 200 kB each) over keep-alive connections, four at a time, through the
    server ``make run`` starts (gunicorn's ASGI worker on config.asgi): each gets its answer. (With
    gunicorn's optional C parser, gunicorn-h1c 0.6.9, under uvloop, a quarter of them lost their
    connection instead.)"""
    from tests.webserver import start_web

    base = start_web(stack, env=NULL_PROVIDERS)
    stack.worker(concurrency=2, env=NULL_PROVIDERS)

    report = _bench(url=base, mode="batch", clients=4, batch_size=1000, limit=16000, duration=120,
                    drain_timeout=120)

    assert report["errors"] == {}
    accepted = report["accepted"]  # the requests in flight when the limit is reached finish too
    assert accepted >= 16000 and report["by_status"] == {"sent": accepted} and report["lost"] == 0


def test_bench_httpx_client_mode_drives_the_procfile_web_server_with_httpx(stack):
    """``--client httpx``: the same load through httpx.AsyncClient (its own headers, headers and body
    written apart), on the server ``make run`` starts; singles (from two processes, ``--processes 2``)
    and a batch are all answered and sent, and the report has the client's CPU per request."""
    from tests.webserver import start_web

    base = start_web(stack, env=NULL_PROVIDERS)
    stack.worker(concurrency=2, env=NULL_PROVIDERS)

    singles = _bench(url=base, mode="single", client="httpx", clients=4, processes=2, limit=40, duration=60,
                     drain_timeout=60)
    batch = _bench(url=base, mode="batch", client="httpx", clients=2, batch_size=100, limit=200, duration=60,
                   drain_timeout=60)

    assert singles["client"] == "httpx" and singles["errors"] == {}
    assert singles["accepted"] >= 40 and singles["by_status"] == {"sent": singles["accepted"]}
    assert singles["request_latency_s"]["single"]["n"] == singles["requests"]
    assert singles["processes"] == 2 and singles["client_cpu_ms_per_request"] > 0
    assert batch["processes"] == 1 and batch["client_cpu_s"] > 0
    assert batch["errors"] == {} and batch["accepted"] >= 200 and batch["by_status"] == {"sent": batch["accepted"]}
