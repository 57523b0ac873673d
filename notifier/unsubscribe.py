"""Signed unsubscribe links for the ``List-Unsubscribe`` header (RFC 2369, one-click per RFC 8058).

The token is the notification id signed with ``SECRET_KEY``; the link is
``{NOTIFIER_PUBLIC_URL}/unsubscribe/{token}/``. Opening it shows a
confirmation form; a POST (what mail clients send for one-click) records the
unsubscribe.
"""
from __future__ import annotations

from django.core import signing

SALT = "notifier.unsubscribe"


def make_token(notification_id: str) -> str:
    return signing.Signer(salt=SALT).sign(str(notification_id))


def read_token(token: str) -> str | None:
    """The notification id in ``token``, or None when the signature is wrong."""
    try:
        return signing.Signer(salt=SALT).unsign(token)
    except signing.BadSignature:
        return None


def unsubscribe_url(public_url: str, notification_id: str) -> str:
    return f"{public_url.rstrip('/')}/unsubscribe/{make_token(notification_id)}/"
