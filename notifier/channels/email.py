"""Email over SMTP through Django's email backend."""
from __future__ import annotations

import email.errors
import re
import smtplib
import socket
import threading
from email.utils import make_msgid
from functools import partial

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives, get_connection

from notifier.headers import UNSAFE, unsafe_char
from notifier.interrupts import INTERRUPTS

from .base import Message, Provider, ProviderError

# What Python's email package and Django raise for a message that cannot be written out: a header
# it refuses (BadHeaderError is a ValueError, HeaderParseError a MessageError), an address whose
# domain does not encode to IDNA (UnicodeError, a ValueError) or that does not parse.
INPUT_ERRORS = (ValueError, email.errors.MessageError)


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.\d{1,3}\b")


def is_hard_bounce(code: int, text: str) -> bool:
    """A 5xx refusal of the recipient address itself (RFC 3463 5.1.x), not of the message or sender."""
    if not 500 <= code < 600:
        return False
    match = _ENHANCED.match(text or "")
    if match:
        return match.group(1) == "5" and match.group(2) == "1"
    return code in (550, 551, 553)


def classify_smtp_error(exc: Exception, *, connecting: bool = False) -> ProviderError:
    """SMTP 5xx replies are permanent; 4xx replies and connection trouble are transient.

    A 5xx refusal of the recipient address (e.g. ``550 5.1.1 No such user``) is
    a hard bounce: the address goes on the suppression list.

    A message that cannot be written out (``INPUT_ERRORS``: a malformed header,
    an address that does not encode) is permanent and ``bad_input``: retrying
    cannot help, and the circuit breaker does not count it.

    ``connecting``: the error came while opening the session (connect,
    greeting, EHLO, STARTTLS, AUTH). That is the relay (or its configuration),
    never one message: transient whatever the reply (``554`` instead of the
    greeting included), so it counts towards the breaker and the chunk waits.
    """
    if connecting:
        if isinstance(exc, smtplib.SMTPResponseException):
            msg = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return ProviderError(f"SMTP connection refused: {exc.smtp_code} {msg}", code=str(exc.smtp_code))
        return ProviderError(f"SMTP connection error: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, INPUT_ERRORS):
        return ProviderError(f"SMTP message not sendable: {exc.__class__.__name__}: {exc}", bad_input=True,
                             code="invalid_message")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = [(code, msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg))
                   for code, msg in exc.recipients.values()]
        codes = [code for code, _ in replies]
        permanent = bool(codes) and all(500 <= code < 600 for code in codes)
        detail = "; ".join(f"{code} {msg}" for code, msg in replies)
        bounce = permanent and all(is_hard_bounce(code, msg) for code, msg in replies)
        return ProviderError(f"SMTP recipient refused: {detail}", permanent=permanent,
                             code=str(codes[0]) if codes else None, suppress="hard_bounce" if bounce else "")
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return ProviderError(f"SMTP {exc.smtp_code} {msg}", permanent=500 <= exc.smtp_code < 600,
                             code=str(exc.smtp_code))
    if isinstance(exc, (smtplib.SMTPException, OSError, socket.timeout)):
        return ProviderError(f"SMTP connection error: {exc.__class__.__name__}: {exc}", permanent=False)
    return ProviderError(f"SMTP error: {exc.__class__.__name__}: {exc}", permanent=False)


def settings_header_error(values: dict[str, str]) -> str | None:
    """Settings that go into a header of every mail (From, Message-ID, List-Unsubscribe) must hold no
    control character: what is wrong with ``values`` ({setting: value}), or None."""
    for setting, value in values.items():
        char = unsafe_char(value or "")
        if char:
            return f"{setting} holds the control character {char}; it would go into every mail's headers"
    return None


class SmtpEmailProvider(Provider):
    """Sends text (and optional HTML alternative) mail: a chunk over up to ``connections`` SMTP
    sessions at once (one session per share of the chunk; the sessions of a process are shared
    by its worker threads)."""

    name = "smtp"
    channel = "email"

    def __init__(self, *, host: str, port: int, username: str = "", password: str = "",
                 use_tls: bool = False, use_ssl: bool = False, from_email: str, timeout: float = 10.0,
                 name: str = "smtp", public_url: str = "", unsubscribe_mailto: str = "", connections: int = 1):
        self.name = name
        self.connections = max(1, int(connections))
        self._executor = None
        self._pool_lock = threading.Lock()
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.use_tls, self.use_ssl = use_tls, use_ssl
        self.from_email = from_email
        self.timeout = timeout
        self.public_url = public_url
        self.unsubscribe_mailto = unsubscribe_mailto
        problem = settings_header_error({"DEFAULT_FROM_EMAIL": from_email, "NOTIFIER_PUBLIC_URL": public_url,
                                         "NOTIFIER_UNSUBSCRIBE_MAILTO": unsubscribe_mailto})
        if problem:
            raise ImproperlyConfigured(problem)

    @property
    def parallelism(self) -> int:
        return self.connections

    def _connection(self):
        return get_connection(
            "django.core.mail.backends.smtp.EmailBackend",
            host=self.host, port=self.port, username=self.username or None,
            password=self.password or None, use_tls=self.use_tls, use_ssl=self.use_ssl,
            timeout=self.timeout, fail_silently=False,
        )

    @staticmethod
    def header_error(message: Message) -> ProviderError | None:
        """The last defence against header injection: a control character in a value that becomes a
        header (the API and the templates keep them out; rows written before that did not)."""
        search = UNSAFE.search
        if not (search(message.subject) or search(message.to) or message.headers):
            return None  # the common case: two searches
        for name, value in (("Subject", message.subject), ("To", message.to), *message.headers.items()):
            char = unsafe_char(name) or unsafe_char(value)
            if char:
                return ProviderError(f"header {name!r} holds the control character {char}; not sent",
                                     bad_input=True, code="invalid_header")
        return None

    def build(self, message: Message) -> tuple[EmailMultiAlternatives, str]:
        """The mail for ``message`` and its Message-ID; raises a ``bad_input`` ProviderError when a
        header value holds a control character."""
        error = self.header_error(message)
        if error is not None:
            raise error
        message_id = make_msgid(domain=self.from_email.rpartition("@")[2] or "notifier.local")
        headers = {"Message-ID": message_id, "X-Notifier-Id": message.notification_id}
        if message.allow_unsubscribe:
            headers.update(self.unsubscribe_headers(message.notification_id))
        headers.update(message.headers)
        mail = EmailMultiAlternatives(
            subject=message.subject, body=message.body or "", from_email=self.from_email,
            to=[message.to], headers=headers,
        )
        if message.html:
            mail.attach_alternative(message.html, "text/html")
        return mail, message_id

    def unsubscribe_headers(self, notification_id: str) -> dict[str, str]:
        """``List-Unsubscribe`` (a signed https link, plus a mailto when configured) and one-click POST."""
        targets = []
        if self.public_url:
            from notifier.unsubscribe import unsubscribe_url

            targets.append(f"<{unsubscribe_url(self.public_url, notification_id)}>")
        if self.unsubscribe_mailto:
            targets.append(f"<mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{notification_id}>")
        if not targets:
            return {}
        headers = {"List-Unsubscribe": ", ".join(targets)}
        if self.public_url:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return headers

    def send(self, message: Message) -> str:
        result = self.send_many([message])[0]
        if isinstance(result, ProviderError):
            raise result
        return result

    def send_many(self, messages, *, one_session: bool = False):
        """Send over up to ``connections`` SMTP sessions at once (``_over_sessions``), or with
        ``one_session`` over one, in order: a relay that takes half a second to accept each message
        gives 2 messages/s per session, and a chunk has to fit the worker's deadline."""
        messages = list(messages)
        if self.connections > 1 and not one_session:
            return self._over_sessions(messages)
        results: list[str | ProviderError] = []
        connection = None
        for position, message in enumerate(messages):
            try:
                mail, message_id = self.build(message)
            except INTERRUPTS:
                raise
            except Exception as exc:  # noqa: BLE001 - the message's own headers: no session needed to know
                results.append(exc if isinstance(exc, ProviderError) else classify_smtp_error(exc))
                continue
            if connection is None:
                try:
                    connection = self._connection()
                    connection.open()
                except INTERRUPTS:
                    raise
                except Exception as exc:  # noqa: BLE001 - the relay is unreachable: so for the whole rest
                    _close_quietly(connection)
                    error = classify_smtp_error(exc, connecting=True)
                    results.append(error)
                    results.extend(self.header_error(m) or error for m in messages[position + 1:])
                    return results
            try:
                connection.send_messages([mail])
                results.append(message_id)
            except INTERRUPTS:
                raise  # the task's time is up: never one more "transient error" (see notifier.interrupts)
            except Exception as exc:  # noqa: BLE001 - every failure is classified
                error = classify_smtp_error(exc)
                results.append(error)
                if not isinstance(exc, (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)):
                    # The session may be unusable: start a new one for the next message.
                    _close_quietly(connection)
                    connection = None
        _close_quietly(connection)
        return results

    def _over_sessions(self, messages: list[Message]) -> list[str | ProviderError]:
        """Share ``messages`` among up to ``connections`` sessions of the process's pool, each carrying
        its share in order; the results in the messages' order. Through the pool even for one message:
        the process never holds more than ``connections`` sessions, however many threads call at once."""
        sessions = max(1, min(self.connections, len(messages)))
        shares = [messages[start::sessions] for start in range(sessions)]
        results: list[str | ProviderError] = [None] * len(messages)  # type: ignore[list-item]
        send = partial(self.send_many, one_session=True)
        for start, share_results in enumerate(self._pool().map(send, shares)):
            results[start::sessions] = share_results
        return results

    def _pool(self):
        with self._pool_lock:
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(self.connections, thread_name_prefix=f"{self.name}-session")
            return self._executor

    def close(self) -> None:
        with self._pool_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None


def _close_quietly(connection) -> None:
    if connection is None:
        return
    try:
        connection.close()
    except INTERRUPTS:
        raise
    except Exception:  # noqa: BLE001
        pass
