"""A local SMTP server that keeps every message it receives.

``make run`` starts it on 127.0.0.1:1025; each message is written to
``var/mail/<timestamp>-<n>.eml``. Tests use ``SmtpSink`` in-process, with
programmable failures to exercise retries.

    python -m notifier.devtools.smtp_sink --host 127.0.0.1 --port 1025 --dir var/mail
"""
from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import itertools
import signal
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, sink: "SmtpSink"):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink.reply_for_rcpt(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.sink.data_started()
        try:
            if self.sink.delay:
                await asyncio.sleep(self.sink.delay)
            reply = self.sink.reply_for_data()
            if reply:
                return reply
            self.sink.store(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            return "250 Message accepted for delivery"
        finally:
            self.sink.data_ended()


class SmtpSink:
    """An aiosmtpd server in a background thread.

    ``fail_next(n, reply)`` answers the next ``n`` DATA commands with ``reply``
    (e.g. ``"451 4.3.0 try later"``); ``fail_always(reply)`` answers every one;
    ``reject_rcpt(reply)`` refuses every recipient. ``delay`` holds every reply to DATA that many
    seconds (a slow relay); ``peak_sessions`` is the most DATA commands it held at once;
    ``on_message(message)``, when set, is called (in the server's thread) with each message kept,
    before its sender gets the reply.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, directory: Path | None = None):
        self.host = host
        self.port = port
        self.directory = Path(directory) if directory else None
        self.messages: list[email.message.EmailMessage] = []
        self.raw: list[bytes] = []  # each message as it came over the wire (what `messages` parses)
        self.delay = 0.0  # seconds to wait before answering DATA (a slow relay)
        self._lock = threading.Lock()
        self._fail_remaining = 0
        self._fail_reply = ""
        self._fail_always = ""
        self._rcpt_reply = ""
        self._counter = itertools.count(1)
        self._controller: Controller | None = None
        self.on_message = None
        self._active = 0
        self.peak_sessions = 0

    # --- behaviour control
    def fail_next(self, count: int, reply: str = "451 4.3.0 Temporary failure, try again later") -> None:
        with self._lock:
            self._fail_remaining, self._fail_reply = count, reply

    def fail_always(self, reply: str = "451 4.3.0 Temporary failure, try again later") -> None:
        with self._lock:
            self._fail_always = reply

    def reject_rcpt(self, reply: str = "550 5.1.1 No such user") -> None:
        with self._lock:
            self._rcpt_reply = reply

    def heal(self) -> None:
        with self._lock:
            self._fail_remaining, self._fail_always, self._rcpt_reply = 0, "", ""

    def reply_for_rcpt(self, address: str) -> str:
        with self._lock:
            return self._rcpt_reply

    def reply_for_data(self) -> str:
        with self._lock:
            if self._fail_always:
                return self._fail_always
            if self._fail_remaining > 0:
                self._fail_remaining -= 1
                return self._fail_reply
            return ""

    def data_started(self) -> None:
        with self._lock:
            self._active += 1
            self.peak_sessions = max(self.peak_sessions, self._active)

    def data_ended(self) -> None:
        with self._lock:
            self._active -= 1

    # --- storage
    def store(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> None:
        message = email.message_from_bytes(content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
            self.raw.append(content)
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(self._counter):06d}.eml"
            (self.directory / name).write_bytes(content)
        if self.on_message is not None:
            self.on_message(message)

    def by_notification(self) -> dict[str, list[email.message.EmailMessage]]:
        grouped: dict[str, list] = {}
        with self._lock:
            for message in self.messages:
                grouped.setdefault(message.get("X-Notifier-Id", ""), []).append(message)
        return grouped

    # --- lifecycle
    def start(self) -> "SmtpSink":
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port or _free_port(self.host))
        self._controller.start()
        self.port = self._controller.port
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
            self._controller = None


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", default="var/mail")
    args = parser.parse_args()
    # Wait for SIGTERM/SIGINT with sigwait, not a handler: a handler calling Event.set() deadlocks when a
    # second signal lands while the main thread holds the event's lock. Blocked before the server's
    # thread starts, so every thread inherits the mask and only sigwait takes them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    sink = SmtpSink(args.host, args.port, Path(args.dir)).start()
    print(f"SMTP sink listening on {args.host}:{sink.port}, keeping mail in {Path(args.dir).resolve()}", flush=True)
    signal.sigwait(stop_signals)
    sink.stop()


if __name__ == "__main__":
    main()
