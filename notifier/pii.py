"""Masking of personal data (email addresses, phone numbers) for logs and APIs."""
from __future__ import annotations

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


def scrub_text(text: str) -> str:
    """Mask every email address and E.164 phone number found in free text."""
    if not text:
        return text
    text = _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)


def scrub_data(value):
    """Recursively mask email addresses and phone numbers in any JSON-like structure."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: scrub_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_data(v) for v in value)
    return value


def scrub_event(event, hint=None):
    """Sentry ``before_send``: no email address or phone number leaves the process."""
    return scrub_data(event)
