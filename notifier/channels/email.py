"""Email over SMTP through Django's email backend."""
from __future__ import annotations

import smtplib
import socket
from email.utils import make_msgid

from django.core.mail import EmailMultiAlternatives, get_connection

from .base import Message, Provider, ProviderError


def classify_smtp_error(exc: Exception) -> ProviderError:
    """SMTP 5xx replies are permanent; 4xx replies and connection trouble are transient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = bool(codes) and all(400 <= code < 600 and code >= 500 for code in codes)
        detail = "; ".join(f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                           for code, msg in exc.recipients.values())
        return ProviderError(f"SMTP recipient refused: {detail}", permanent=permanent,
                             code=str(codes[0]) if codes else None)
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return ProviderError(f"SMTP {exc.smtp_code} {msg}", permanent=500 <= exc.smtp_code < 600,
                             code=str(exc.smtp_code))
    if isinstance(exc, (smtplib.SMTPException, OSError, socket.timeout)):
        return ProviderError(f"SMTP connection error: {exc.__class__.__name__}: {exc}", permanent=False)
    return ProviderError(f"SMTP error: {exc.__class__.__name__}: {exc}", permanent=False)


class SmtpEmailProvider(Provider):
    """Sends text (and optional HTML alternative) mail over one SMTP connection per chunk."""

    name = "smtp"
    channel = "email"

    def __init__(self, *, host: str, port: int, username: str = "", password: str = "",
                 use_tls: bool = False, use_ssl: bool = False, from_email: str, timeout: float = 10.0,
                 name: str = "smtp", unsubscribe_url: str = ""):
        self.name = name
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.use_tls, self.use_ssl = use_tls, use_ssl
        self.from_email = from_email
        self.timeout = timeout
        self.unsubscribe_url = unsubscribe_url

    def _connection(self):
        return get_connection(
            "django.core.mail.backends.smtp.EmailBackend",
            host=self.host, port=self.port, username=self.username or None,
            password=self.password or None, use_tls=self.use_tls, use_ssl=self.use_ssl,
            timeout=self.timeout, fail_silently=False,
        )

    def build(self, message: Message) -> tuple[EmailMultiAlternatives, str]:
        message_id = make_msgid(domain=self.from_email.rpartition("@")[2] or "notifier.local")
        headers = {"Message-ID": message_id, "X-Notifier-Id": message.notification_id}
        if message.allow_unsubscribe:
            target = (f"<{self.unsubscribe_url}?n={message.notification_id}>" if self.unsubscribe_url
                      else f"<mailto:{self.from_email}?subject=unsubscribe%20{message.notification_id}>")
            headers["List-Unsubscribe"] = target
        headers.update(message.headers)
        email = EmailMultiAlternatives(
            subject=message.subject, body=message.body or "", from_email=self.from_email,
            to=[message.to], headers=headers,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        return email, message_id

    def send(self, message: Message) -> str:
        result = self.send_many([message])[0]
        if isinstance(result, ProviderError):
            raise result
        return result

    def send_many(self, messages):
        messages = list(messages)
        results: list[str | ProviderError] = []
        connection = None
        for message in messages:
            try:
                if connection is None:
                    connection = self._connection()
                    connection.open()
                email, message_id = self.build(message)
                connection.send_messages([email])
                results.append(message_id)
            except Exception as exc:  # noqa: BLE001 - every failure is classified
                error = classify_smtp_error(exc)
                results.append(error)
                if not isinstance(exc, (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)):
                    # The session may be unusable: start a new one for the next message.
                    _close_quietly(connection)
                    connection = None
        _close_quietly(connection)
        return results


def _close_quietly(connection) -> None:
    if connection is None:
        return
    try:
        connection.close()
    except Exception:  # noqa: BLE001
        pass
