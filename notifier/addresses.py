"""Addresses: one canonical form per address (so the suppression list matches across channels
and spellings), and the email check used on the hot path of accepting notifications."""
from __future__ import annotations

import json
import re

from django.core.validators import EmailValidator


def _compiled(lazy_pattern):
    return re.compile(lazy_pattern.pattern, lazy_pattern.flags)


class CompiledEmailValidator(EmailValidator):
    """Django's ``validate_email`` with its regular expressions compiled up front.

    Django keeps them as lazy objects, and every use goes through the lazy
    proxy; at thousands of addresses a second that proxy cost more than the
    matching. Same patterns, same answers.

    Domains repeat (a batch of a thousand addresses has a handful), and their
    check (a long regular expression, and IDNA encoding for non-ASCII names)
    depends on nothing else: its answer is kept per domain, for up to
    ``MAX_KNOWN_DOMAINS`` domains.
    """

    user_regex = _compiled(EmailValidator.user_regex)
    domain_regex = _compiled(EmailValidator.domain_regex)
    literal_regex = _compiled(EmailValidator.literal_regex)
    MAX_KNOWN_DOMAINS = 10_000
    _known_domains: dict[str, bool] = {}

    def validate_domain_part(self, domain_part):
        known = self._known_domains.get(domain_part)
        if known is None:
            known = bool(super().validate_domain_part(domain_part))
            if len(self._known_domains) < self.MAX_KNOWN_DOMAINS:
                self._known_domains[domain_part] = known
        return known


validate_email = CompiledEmailValidator()


def web_push_endpoint(token: str) -> str | None:
    """The endpoint of a Push API subscription JSON, or None when ``token`` is not one."""
    text = (token or "").strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    endpoint = value.get("endpoint") if isinstance(value, dict) else None
    return endpoint if isinstance(endpoint, str) and endpoint else None


def web_push_token_errors(tokens) -> list[str]:
    """Why direct device tokens that are Web Push subscriptions may not be sent to (empty: all fine).

    Their endpoint must be https on a public host (``notifier.netguard``); no DNS lookup here (this
    runs as notifications are accepted): the send resolves and checks the host before connecting.
    """
    errors: list[str] = []
    for token in tokens:
        if not token.lstrip().startswith("{"):
            continue  # an FCM/APNs token
        endpoint = web_push_endpoint(token)
        if endpoint is None:
            continue
        from django.conf import settings

        from notifier.netguard import UnsafeURL, validate_push_endpoint

        try:
            validate_push_endpoint(endpoint, allow_private=settings.NOTIFIER_PUSH_ALLOW_PRIVATE, resolve=False)
        except UnsafeURL as exc:
            errors.append(f"The Web Push subscription's endpoint is refused: {exc}")
    return errors


def push_platform(token: str, platform: str = "") -> str:
    """A device's platform; for a bare token, ``web`` if it is a subscription JSON, else ``android``."""
    if platform:
        return platform
    return "web" if web_push_endpoint(token) else "android"


def canonical_address(channel: str, address: str) -> str:
    """Email addresses lower-cased, web push subscriptions by endpoint, the rest trimmed."""
    address = (address or "").strip()
    if channel == "email":
        return address.lower()
    if channel == "push":
        return web_push_endpoint(address) or address
    return address
