"""Run an optional process of the Procfile so that its failure cannot stop the others.

honcho stops every process as soon as one exits. That is right for the API, the workers and beat,
but Flower and the local SMTP sink are conveniences: a Flower without credentials must not take the
API and the workers down with it. The Procfile starts them through this supervisor:

    python -m notifier.devtools.optional flower -- .venv/bin/celery -A config.celery_app flower ...

It runs the command, passing its output through. When the command exits, it prints a banner to
stderr naming the process, its exit code, its last lines of output and what to set to fix it, and
starts it again after a back-off (5 s, doubled after each failure up to 5 minutes; back to 5 s
after a run that lasted a minute). SIGTERM and SIGINT are forwarded to the command and then end the
supervisor, so stopping `make run` (Ctrl-C) still stops everything at once.

The command runs in a process group of its own, so it gets each signal once, from the supervisor
(honcho signals the supervisor's group; a second SIGTERM can hit a program inside its first one's
handler). On Linux it is also killed if the supervisor dies (honcho's SIGKILL after 5 s).
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

# What to check when a known optional process will not stay up.
FIXES = {
    "flower": "set FLOWER_BASIC_AUTH=user:password in the environment or in .env (make run writes one), "
              "and FLOWER_PORT if its port (5555) is taken; config/flowerconfig.py lists the other options",
    "smtp": "set SMTP_SINK_PORT if its port (1025) is taken (EMAIL_PORT follows it), "
            "or point EMAIL_HOST/EMAIL_PORT at a real SMTP relay",
}
TAIL_LINES = 12
RAN_LONG_ENOUGH = 60.0  # a run this long resets the back-off


class Supervisor:
    def __init__(self, name: str, command: list[str], *, fix: str = "", backoff: float = 5.0,
                 backoff_max: float = 300.0, out=None, err=None):
        self.name, self.command, self.fix = name, command, fix or FIXES.get(name, "")
        self.backoff, self.backoff_max = backoff, backoff_max
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr
        self.child: subprocess.Popen | None = None
        self.stop_signal: int | None = None
        self.failures = 0

    # --- signals -------------------------------------------------------------------
    def handle_signal(self, signum, frame=None) -> None:
        self.stop_signal = signum
        child = self.child
        if child is not None and child.returncode is None:
            try:
                os.kill(child.pid, signum)
            except ProcessLookupError:
                pass

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.handle_signal)

    # --- one run ------------------------------------------------------------------
    def run_once(self) -> tuple[int, list[str], float]:
        """Run the command to its end; return its exit code, its last lines and how long it ran."""
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        started = time.monotonic()
        try:
            # (preexec_fn: the previous run's output thread has ended; this one starts after the fork)
            self.child = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, process_group=0,
                                          preexec_fn=_die_with_parent(os.getpid()))  # noqa: PLW1509
        except OSError as exc:
            return 127, [f"could not start {self.command[0]}: {exc}"], 0.0
        if self.stop_signal is not None:  # a signal arrived while it was being started
            self.handle_signal(self.stop_signal)
        pump = threading.Thread(target=self._pump, args=(self.child.stdout, tail), daemon=True)
        pump.start()
        returncode = self.child.wait()
        pump.join(5)
        return returncode, list(tail), time.monotonic() - started

    def _pump(self, stream, tail) -> None:
        for line in iter(stream.readline, b""):
            try:
                self.out.write(line)
                self.out.flush()
            except (OSError, ValueError):
                pass
            tail.append(line.decode("utf-8", "replace").rstrip())
        stream.close()

    # --- the loop -----------------------------------------------------------------
    def banner(self, returncode: int, tail: list[str], ran: float, delay: float) -> str:
        if returncode < 0:
            how = f"was killed by signal {-returncode} ({_signal_name(-returncode)})"
        else:
            how = f"exited with code {returncode}"
        rule = "!" * 78
        lines = [rule, f"!!! {self.name} {how} after {ran:.1f} s (failure {self.failures}).",
                 f"!!! {self.name} is optional: the rest of the stack keeps running without it.",
                 "!!! Its last output:"]
        lines += [f"!!!   {line}" for line in tail] or ["!!!   (none)"]
        if self.fix:
            lines.append(f"!!! To fix: {self.fix}.")
        lines += [f"!!! Starting {self.name} again in {delay:g} s.", rule]
        return "\n".join(lines) + "\n"

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def run(self) -> int:
        delay = self.backoff
        while self.stop_signal is None:
            returncode, tail, ran = self.run_once()
            self.child = None
            if self.stop_signal is not None:
                break
            if ran >= RAN_LONG_ENOUGH:
                delay = self.backoff
            self.failures += 1
            self.err.write(self.banner(returncode, tail, ran, delay))
            self.err.flush()
            self.sleep(delay)
            delay = min(delay * 2, self.backoff_max)
        return 128 + self.stop_signal


def _die_with_parent(parent: int):
    """A preexec_fn that has the kernel SIGKILL the child when this process dies (Linux), or None."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the supervisor died before that took effect
            os._exit(1)

    return preexec


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description="Run an optional process; report loudly and restart it when it exits.",
        usage="%(prog)s NAME [--fix TEXT] [--backoff S] [--backoff-max S] -- COMMAND [ARG ...]")
    parser.add_argument("name", help="the process's name in the Procfile (flower, smtp)")
    parser.add_argument("--fix", default="", help="what to set when it fails (default: known per name)")
    parser.add_argument("--backoff", type=float, default=5.0, help="seconds before the first restart")
    parser.add_argument("--backoff-max", type=float, default=300.0, help="longest wait between restarts")
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the command to run after --")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    supervisor = Supervisor(args.name, argv[split + 1:], fix=args.fix, backoff=args.backoff,
                            backoff_max=args.backoff_max)
    supervisor.install_signal_handlers()
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
