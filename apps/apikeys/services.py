"""Creating, checking and revoking API keys."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.utils import timezone

from .models import SCOPES, ApiKey

KEY_PREFIX = "nk_"
_CACHE_TTL = 30.0
_cache: dict[str, tuple[float, ApiKey | None]] = {}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    raw: str


def api_key_create(*, name: str, scopes: list[str] | None = None, allowed_channels: list[str] | None = None) -> IssuedKey:
    scopes = list(scopes or [])
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"Unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name, prefix=prefix, key_hash=_hash(raw), scopes=scopes, allowed_channels=list(allowed_channels or []),
    )
    return IssuedKey(api_key=key, raw=raw)


def api_key_revoke(*, prefix: str) -> int:
    _cache.clear()
    return ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_check(raw: str, *, now=time.monotonic) -> ApiKey | None:
    """The active key matching ``raw``, or None. Lookups are cached briefly per process."""
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix = raw[len(KEY_PREFIX):].split("_", 1)[0]
    digest = _hash(raw)
    cached = _cache.get(digest)
    if cached and cached[0] > now():
        key = cached[1]
    else:
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is not None and not hmac.compare_digest(key.key_hash, digest):
            key = None
        if key is not None and not key.is_active:
            key = None
        _cache[digest] = (now() + _CACHE_TTL, key)
        if key is not None:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def clear_cache() -> None:
    _cache.clear()
