"""A minimal SMTP server that accepts every message and counts them by ``X-Notifier-Id``.

For load runs where ``smtp_sink`` (aiosmtpd, every message parsed and kept in memory) would cost
too much: this one keeps one counter per notification id and nothing else, so it can tell how many
times each notification reached the SMTP server (duplicates after a fault).

    python -m notifier.devtools.smtp_counter --port 0 --port-file var/counter.port --out var/counts.json

It writes its port to ``--port-file`` once listening, and its counts to ``--out`` on SIGUSR1 (and
keeps running) or SIGTERM/SIGINT (and exits): ``{"messages", "distinct", "without_id", "repeats":
{id: count for ids received more than once}}``. In-process: ``SmtpCounter().start()``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import threading
from collections import Counter
from pathlib import Path

_HEADER = re.compile(rb"^x-notifier-id:[ \t]*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)
_END = b"\r\n.\r\n"


class _Session(asyncio.Protocol):
    """One SMTP session (RFC 5321 minus everything the Django backend does not use)."""

    def __init__(self, counter: "SmtpCounter"):
        self.counter = counter
        self.buffer = b""
        self.in_data = False
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(b"220 notifier smtp_counter ready\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer and self.transport is not None:
            if self.in_data:
                # The first line after 354 may already be the terminator (an empty message).
                if self.buffer.startswith(b".\r\n"):
                    message, self.buffer = b"", self.buffer[3:]
                else:
                    end = self.buffer.find(_END)
                    if end < 0:
                        return
                    message, self.buffer = self.buffer[:end + 2], self.buffer[end + len(_END):]
                self.in_data = False
                self.counter.record(message)
                self.transport.write(b"250 2.0.0 accepted\r\n")
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2:]
            self.command(line)

    def command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            self.transport.write(b"250 notifier smtp_counter\r\n")
        elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            self.transport.write(b"250 2.0.0 OK\r\n")
        elif verb == b"DATA":
            self.in_data = True
            self.transport.write(b"354 end with <CRLF>.<CRLF>\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"221 2.0.0 bye\r\n")
            self.transport.close()
            self.transport = None
        else:
            self.transport.write(b"502 5.5.2 not implemented\r\n")

    def connection_lost(self, exc) -> None:
        self.transport = None


class SmtpCounter:
    """The server on its own event loop in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.counts: Counter[str] = Counter()
        self.without_id = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    def record(self, message: bytes) -> None:
        head = message.split(b"\r\n\r\n", 1)[0]
        match = _HEADER.search(head)
        with self._lock:
            if match:
                self.counts[match.group(1).strip().decode("ascii", "replace")] += 1
            else:
                self.without_id += 1

    def summary(self, *, every_id: bool = False) -> dict:
        """Totals, the ids received more than once, and with ``every_id`` the count of every id."""
        with self._lock:
            summary = {"messages": sum(self.counts.values()) + self.without_id, "distinct": len(self.counts),
                       "without_id": self.without_id,
                       "repeats": {key: count for key, count in self.counts.items() if count > 1}}
            if every_id:
                summary["counts"] = dict(self.counts)
            return summary

    def start(self) -> "SmtpCounter":
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                self._loop.create_server(lambda: _Session(self), self.host, self.port, backlog=256))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="smtp-counter", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("smtp_counter did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None


def _write(path: Path, summary: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(summary))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the listening port here")
    parser.add_argument("--out", required=True, help="write the counts here (SIGUSR1, SIGTERM)")
    args = parser.parse_args()
    out = Path(args.out)
    counter = SmtpCounter(args.host, args.port).start()
    stop = threading.Event()
    dump = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: dump.set())
    if args.port_file:
        _write(Path(args.port_file), counter.port)
    print(f"smtp_counter listening on {args.host}:{counter.port}", flush=True)
    while not stop.wait(0.1):
        if dump.is_set():
            dump.clear()
            _write(out, counter.summary(every_id=True))
    counter.stop()
    _write(out, counter.summary(every_id=True))


if __name__ == "__main__":
    main()
