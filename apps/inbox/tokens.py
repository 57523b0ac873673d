"""Recipient tokens: short-lived signed JWTs that open one recipient's inbox and nothing else.

A client's back end mints one with its API key (``POST
/api/v1/recipients/{id}/token/``) and hands it to the browser or app, which
sends it as ``Authorization: Bearer <token>`` (or ``?token=`` for
EventSource, which cannot set headers).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import jwt
from django.conf import settings
from django.utils import timezone

ALGORITHM = "HS256"
ISSUER = "notifier"
AUDIENCE = "notifier:inbox"
SCOPE = "inbox"


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or not a recipient token."""


@dataclass(frozen=True)
class RecipientToken:
    """The verified claims of a recipient token (``request.auth`` on inbox endpoints)."""

    recipient_id: int
    external_id: str
    expires_at: datetime


def _key() -> bytes:
    """HS256 key: NOTIFIER_RECIPIENT_TOKEN_KEY if set, else derived from SECRET_KEY (never SECRET_KEY itself)."""
    base = settings.NOTIFIER_RECIPIENT_TOKEN_KEY or settings.SECRET_KEY
    return hmac.new(base.encode(), b"notifier.recipient-token.v1", hashlib.sha256).digest()


def looks_like_token(raw: str) -> bool:
    """JWTs are three base64url parts; API keys start with ``nk_``."""
    return raw.count(".") == 2 and raw.startswith("eyJ")


def recipient_token_issue(*, recipient, ttl: float | None = None, now: datetime | None = None) -> tuple[str, datetime]:
    """A signed token for ``recipient``'s inbox and its expiry time."""
    now = now or timezone.now()
    ttl = settings.NOTIFIER_RECIPIENT_TOKEN_TTL if ttl is None else ttl
    expires_at = (now + timedelta(seconds=ttl)).replace(microsecond=0)
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "scope": SCOPE,
        "sub": recipient.external_id, "rid": recipient.pk,
        "iat": int(now.timestamp()), "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, _key(), algorithm=ALGORITHM), expires_at


def recipient_token_verify(raw: str) -> RecipientToken:
    """The claims of a valid, unexpired token; raises ``InvalidToken`` otherwise."""
    try:
        claims = jwt.decode(raw, _key(), algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "rid", "aud", "iss"]})
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The recipient token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("Invalid recipient token.") from exc
    if claims.get("scope") != SCOPE or not isinstance(claims.get("rid"), int) or not isinstance(claims["sub"], str):
        raise InvalidToken("Invalid recipient token.")
    return RecipientToken(recipient_id=claims["rid"], external_id=claims["sub"],
                          expires_at=datetime.fromtimestamp(claims["exp"], tz=dt_timezone.utc))
