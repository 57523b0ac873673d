"""Masking of personal data (email addresses, phone numbers) for logs and APIs."""
from __future__ import annotations

import logging
import re

_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
_PHONE_RE = re.compile(r"\+\d{7,15}")


def mask_email(address: str) -> str:
    local, _, domain = (address or "").partition("@")
    if not domain:
        return mask_generic(address)
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    number = number or ""
    if len(number) <= 4:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 4) + number[-2:]


def mask_generic(value: str) -> str:
    value = value or ""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "…" + value[-4:]


def mask_address(channel: str, address: str) -> str:
    if not address:
        return address
    if channel == "email":
        return mask_email(address)
    if channel == "sms":
        return mask_phone(address)
    return mask_generic(address)


_EMAIL_ENCODED_RE = re.compile(r"([A-Za-z0-9._\-])[A-Za-z0-9._\-]*%40([A-Za-z0-9.\-]+\.[A-Za-z]{2,})", re.I)
_PHONE_ENCODED_RE = re.compile(r"%2B(\d{7,15})", re.I)


def scrub_text(text: str) -> str:
    """Mask every email address and E.164 phone number found in free text (also URL-encoded)."""
    if not text:
        return text
    if "@" in text:
        text = _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    if "+" in text:
        text = _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)
    if "%" in text:
        text = _EMAIL_ENCODED_RE.sub(lambda m: f"{m.group(1)}***%40{m.group(2)}", text)
        text = _PHONE_ENCODED_RE.sub(lambda m: "%2B" + mask_phone("+" + m.group(1))[1:], text)
    return text


def scrub_data(value):
    """Recursively mask email addresses and phone numbers in any JSON-like structure (keys too)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bytes):
        return scrub_text(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {scrub_data(k) if isinstance(k, str) else k: scrub_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub_data(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    # Any other object (e.g. a request in a log record's attributes) would be repr()'d later: do it now.
    return scrub_text(repr(value))


def scrub_event(event, hint=None):
    """Sentry ``before_send`` and ``before_send_transaction``: no address leaves the process.

    Covers everything in the event: message and exception values, stack-frame
    local variables, request URL, query string, headers, cookies and body,
    breadcrumbs, extra, contexts and tags, spans.
    """
    return scrub_data(event)


def scrub_breadcrumb(crumb, hint=None):
    """Sentry ``before_breadcrumb``."""
    return scrub_data(crumb)


# What the operations code passes to ``sentry_sdk.init(**SENTRY_SCRUBBING, ...)``.
SENTRY_SCRUBBING = {
    "before_send": scrub_event,
    "before_send_transaction": scrub_event,
    "before_breadcrumb": scrub_breadcrumb,
    "before_send_log": scrub_event,
    "send_default_pii": False,
}


class PiiFilter(logging.Filter):
    """Masks email addresses and phone numbers in every record a handler emits.

    The message is formatted with its arguments first, then scrubbed; a traceback
    is formatted and scrubbed too (exception messages often quote addresses).
    Configured on every handler in settings.LOGGING (and on gunicorn's loggers by
    config/gunicorn.py).
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logged as is
            message = str(record.msg)
        record.msg = scrub_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info)
        return True


def mask_all_log_handlers() -> None:
    """Add PiiFilter to every handler of every logger configured so far (root included)."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, PiiFilter) for f in handler.filters):
                handler.addFilter(PiiFilter())


def configure_logging(config: dict) -> None:
    """``settings.LOGGING_CONFIG``: dictConfig, then mask every handler — also those Django's
    default logging installed (its DEBUG console handler on the ``django`` logger)."""
    import logging.config

    logging.config.dictConfig(config)
    mask_all_log_handlers()
