"""Masking of personal data (email addresses, phone numbers) for logs and APIs, and of
credentials and tokens too for Sentry."""
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


FILTERED = "[Filtered]"
# Credentials in free text: the scheme of an Authorization value, API keys (their public prefix is
# kept: it names the key in the admin), JWTs (recipient tokens), webhook secrets, secrets in query
# strings, and long opaque runs (device tokens, Web Push endpoint paths, hashes).
_AUTH_VALUE_RE = re.compile(r"\b(Bearer|Basic|vapid)(\s+)([\w.~+/=:,\-]{8,})", re.I | re.A)
_CREDENTIAL_CHARS = re.compile(r"[\d.~+/=:,_\-]")


def _auth_value(match: re.Match) -> str:
    """``Bearer <credential>`` → ``Bearer [Filtered]``; a plain word is left alone ("Basic checks")
    unless it could be base64 (a multiple of 4 characters)."""
    value = match.group(3)
    if _CREDENTIAL_CHARS.search(value) or len(value) % 4 == 0:
        return f"{match.group(1)}{match.group(2)}{FILTERED}"
    return match.group(0)
_API_KEY_RE = re.compile(r"\bnk_([0-9A-Za-z]{0,16})_[A-Za-z0-9_\-]+")
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_WEBHOOK_SECRET_RE = re.compile(r"\bwhsec_[A-Za-z0-9+/=]+")
_QUERY_SECRET_RE = re.compile(
    r"((?:^|[?&;\s])(?:token|access_token|api_key|apikey|key|secret|signature|auth|password)=)[^&#\s\"']+", re.I)
_OPAQUE_RE = re.compile(  # letters and digits mixed (not a line of dashes)
    r"(?<![A-Za-z0-9_\-:])(?=[A-Za-z0-9_\-:]*\d)(?=[A-Za-z0-9_\-:]*[A-Za-z])[A-Za-z0-9_\-:]{64,}")
# Dictionary keys whose (string or structured) values are credentials or device tokens.
_SECRET_KEY_RE = re.compile(
    r"pass(word|wd)|secret|token|authorization|api[_-]?key|cookie|credential|private[_-]?key|p256dh|signature"
    r"|^auth$|^keys$", re.I)


def scrub_secrets(text: str) -> str:
    """Mask credentials and tokens found in free text (for Sentry payloads; see ``scrub_data``)."""
    if not text or len(text) < 8:
        return text
    text = _AUTH_VALUE_RE.sub(_auth_value, text)
    if "nk_" in text:
        text = _API_KEY_RE.sub(lambda m: f"nk_{m.group(1)}_{FILTERED}", text)
    if "eyJ" in text:
        text = _JWT_RE.sub(FILTERED, text)
    if "whsec_" in text:
        text = _WEBHOOK_SECRET_RE.sub("whsec_" + FILTERED, text)
    if "=" in text:
        text = _QUERY_SECRET_RE.sub(lambda m: m.group(1) + FILTERED, text)
    if len(text) >= 64:
        text = _OPAQUE_RE.sub(FILTERED, text)
    return text


def _scrub_string(text: str) -> str:
    return scrub_secrets(scrub_text(text))


def scrub_data(value):
    """Recursively mask email addresses, phone numbers, credentials and tokens in any JSON-like
    structure (keys too); values under keys that name a secret (``token``, ``authorization``,
    ``password``, ``api_key``, ``cookie``, Web Push ``keys`` ...) are replaced whole."""
    if isinstance(value, str):
        return _scrub_string(value)
    if isinstance(value, bytes):
        return _scrub_string(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str):
                if _SECRET_KEY_RE.search(k) and not (v is None or isinstance(v, (bool, int, float))):
                    out[_scrub_string(k)] = FILTERED
                    continue
                k = _scrub_string(k)
            out[k] = scrub_data(v)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub_data(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    # Any other object (e.g. a request in a log record's attributes) would be repr()'d later: do it now.
    return _scrub_string(repr(value))


def scrub_event(event, hint=None):
    """Sentry ``before_send``, ``before_send_transaction``, ``before_send_log`` and
    ``before_send_metric``: no address, credential or token leaves the process.

    Covers everything in the event: message and exception values, stack-frame
    local variables, request URL, query string, headers, cookies and body,
    breadcrumbs, extra, contexts and tags, the transaction name, spans
    (descriptions and data), log bodies and attributes.
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
    "before_send_metric": scrub_event,
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
