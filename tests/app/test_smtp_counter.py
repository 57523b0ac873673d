"""notifier/devtools/smtp_counter.py: counts what the SMTP provider sends, per X-Notifier-Id (make cluster-test)."""
import json
import signal
import subprocess
import sys

from notifier.channels.base import Message
from notifier.channels.email import SmtpEmailProvider
from notifier.devtools.smtp_counter import SmtpCounter
from tests.stack import ROOT, wait_for


def _message(notification_id, body="hello"):
    return Message(notification_id=notification_id, channel="email", to="ann@example.com", category="transactional",
                   priority="normal", subject="Hi", body=body, html="", title="", data={}, platform="",
                   allow_unsubscribe=False)


def _provider(port):
    return SmtpEmailProvider(host="127.0.0.1", port=port, from_email="notifier@localhost")


def test_the_counter_counts_each_notification_as_often_as_it_was_sent():
    counter = SmtpCounter().start()
    try:
        body = "line\n.\n..starts with dots\n\nlast"  # dot-stuffed lines and a blank line in the body
        results = _provider(counter.port).send_many([_message("n-1", body), _message("n-2"), _message("n-1")])
        assert all(isinstance(r, str) for r in results), results
        summary = counter.summary(every_id=True)
    finally:
        counter.stop()
    assert summary["messages"] == 3 and summary["distinct"] == 2
    assert summary["repeats"] == {"n-1": 2}
    assert summary["counts"] == {"n-1": 2, "n-2": 1}


def test_the_counter_process_writes_its_counts_when_stopped(tmp_path):
    port_file, out = tmp_path / "port", tmp_path / "counts.json"
    proc = subprocess.Popen([sys.executable, "-m", "notifier.devtools.smtp_counter", "--port-file", str(port_file),
                             "--out", str(out)], cwd=ROOT)
    try:
        wait_for(port_file.exists, timeout=30, message="the counter to listen")
        _provider(int(port_file.read_text())).send_many([_message("n-9")])
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads(out.read_text())["counts"] == {"n-9": 1}
