"""notifier/devtools/optional.py: an optional process of the Procfile (Flower, the SMTP sink) that
exits is reported loudly and started again; it never ends the supervisor, signals do."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stack import wait_for

ROOT = Path(__file__).resolve().parents[2]
FAILS = "import sys; print('starting'); print('Needs SOMETHING=set', file=sys.stderr); sys.exit(3)"
# Says which process groups it and its supervisor are in, then waits for SIGTERM.
WAITS_FOR_SIGTERM = """
import os, signal, sys, time
got = []
signal.signal(signal.SIGTERM, lambda *_: got.append(1))
print(os.getpgrp(), os.getpgid(os.getppid()), flush=True)
while not got:
    time.sleep(0.05)
print('got SIGTERM', flush=True)
"""


@pytest.fixture
def supervise():
    """Start the supervisor in a session of its own; kill whatever is left of it afterwards."""
    started = []

    def start(*command, name="flower", backoff="0.2", backoff_max="0.3", fix=None):
        args = [sys.executable, "-m", "notifier.devtools.optional", name, "--backoff", backoff,
                "--backoff-max", backoff_max]
        if fix:
            args += ["--fix", fix]
        proc = subprocess.Popen([*args, "--", *command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate(timeout=10)


def stop(proc, sig=signal.SIGTERM):
    """Signal the supervisor's process group, as honcho does; return its output."""
    os.killpg(proc.pid, sig)
    return proc.communicate(timeout=20)


def test_a_process_that_exits_is_reported_with_its_last_output_and_the_fix_then_started_again_with_backoff(
        supervise, tmp_path):
    runs = tmp_path / "runs"
    code = f"open({str(runs)!r}, 'a').write('x'); " + FAILS
    proc = supervise(sys.executable, "-c", code)
    wait_for(lambda: runs.exists() and len(runs.read_text()) >= 3, timeout=30, message="three runs")
    assert proc.poll() is None  # it never gives up
    out, err = stop(proc)
    assert "starting" in out  # the command's output passes through
    banners = err.split("!!! flower exited with code 3")
    assert len(banners) >= 4, err
    assert "!!! flower is optional: the rest of the stack keeps running without it." in err
    assert "!!!   Needs SOMETHING=set" in err  # its last words, in the banner
    assert "!!! To fix: set FLOWER_BASIC_AUTH=user:password" in err
    # 0.2 s, doubled, capped at 0.3 s
    assert "again in 0.2 s" in banners[1] and "again in 0.3 s" in banners[2] and "again in 0.3 s" in banners[3]


def test_sigterm_to_the_supervisors_group_reaches_the_process_once_through_the_supervisor(supervise):
    """honcho signals the supervisor's process group. The command is in a group of its own, so the
    signal reaches it once, forwarded (a second SIGTERM can land inside a program's handler of the first:
    the SMTP sink deadlocked so), and the supervisor then ends without a restart."""
    proc = supervise(sys.executable, "-c", WAITS_FOR_SIGTERM, name="smtp")
    own_group, supervisor_group = proc.stdout.readline().split()
    assert own_group != supervisor_group
    out, err = stop(proc)
    assert out.strip() == "got SIGTERM"
    assert proc.returncode == 128 + signal.SIGTERM
    assert "!!!" not in err


def test_ctrl_c_during_the_backoff_ends_the_supervisor_at_once(supervise):
    proc = supervise(sys.executable, "-c", FAILS, backoff="600", backoff_max="600")
    deadline = time.monotonic() + 30
    err = ""
    while "again in 600 s" not in err and time.monotonic() < deadline:
        err += proc.stderr.readline()
    assert "again in 600 s" in err
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(20)  # far less than the 600 s back-off
    assert proc.returncode == 128 + signal.SIGINT


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_process_does_not_outlive_a_killed_supervisor(supervise, tmp_path):
    pidfile = tmp_path / "pid"
    proc = supervise(sys.executable, "-c", f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                                           "time.sleep(600)")
    wait_for(lambda: pidfile.exists() and pidfile.read_text(), timeout=30, message="the child's pid")
    child = int(pidfile.read_text())
    proc.kill()  # the supervisor alone (SIGKILL cannot be forwarded)
    proc.wait(10)

    def gone():
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        wait_for(gone, timeout=10, message="the child to die with its supervisor")
    finally:
        if not gone():
            os.kill(child, signal.SIGKILL)


def test_a_command_that_cannot_be_found_is_reported_too(supervise):
    proc = supervise("/nonexistent/flower-binary", fix="install it")
    deadline = time.monotonic() + 30
    err = ""
    while "Starting flower again" not in err and time.monotonic() < deadline:
        err += proc.stderr.readline()
    stop(proc)
    assert "!!! flower exited with code 127" in err
    assert "could not start /nonexistent/flower-binary" in err
    assert "!!! To fix: install it." in err
