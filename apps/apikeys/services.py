"""Creating, checking and revoking API keys."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

from notifier.ratelimit import ApiRateLimiter, client_from_url

from .models import DEFAULT_PROJECT, SCOPES, ApiKey, Project

KEY_PREFIX = "nk_"
_cache: dict[str, tuple[float, ApiKey | None]] = {}
# Compared against when no key has the given prefix, so a miss costs the same as a hit.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()

logger = logging.getLogger(__name__)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    raw: str


_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def project_get_or_create(slug: str = DEFAULT_PROJECT) -> tuple[Project, bool]:
    """The project ``slug`` (letters, digits, ``-``, ``_``), made if it does not exist yet."""
    if not _SLUG.match(slug or ""):
        raise ValueError(f"Invalid project {slug!r}: 1 to 64 letters, digits, '-' or '_'.")
    return Project.objects.get_or_create(slug=slug, defaults={"name": slug})


def api_key_create(*, name: str, scopes: list[str] | None = None, allowed_channels: list[str] | None = None,
                   rate_limit: float | None = None, rate_burst: int | None = None,
                   project: str | Project | None = None) -> IssuedKey:
    """A new key of ``project`` (a slug, made if new, or a ``Project``; default: the ``default`` project)."""
    scopes = list(scopes or [])
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"Unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if not isinstance(project, Project):
        project, _ = project_get_or_create(project or DEFAULT_PROJECT)
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name, prefix=prefix, key_hash=_hash(raw), scopes=scopes, allowed_channels=list(allowed_channels or []),
        rate_limit=rate_limit, rate_burst=rate_burst, project=project,
    )
    api_key_sync_revocation(key_id=key.pk, revoked=False)  # no stale marker from a reused id
    return IssuedKey(api_key=key, raw=raw)


def api_key_revoke(*, prefix: str) -> int:
    """Revoke the key; every API process refuses it from the next request on.

    The revocation is written to PostgreSQL (the truth) and marked in Redis, where
    the per-request throttle script sees it; the per-process lookup cache
    (NOTIFIER_API_KEY_CACHE_SECONDS) only matters when Redis is unreachable.
    """
    _cache.clear()
    ids = list(ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).values_list("pk", flat=True))
    count = ApiKey.objects.filter(pk__in=ids).update(revoked_at=timezone.now())
    for pk in ids:
        api_key_sync_revocation(key_id=pk, revoked=True)
    return count


def api_key_sync_revocation(*, key_id: int, revoked: bool) -> None:
    """Set or clear the key's revocation marker in Redis (admin edits call this too)."""
    _cache.clear()
    limiter = rate_limiter()
    try:
        if revoked:
            limiter.mark_revoked(str(key_id))
        else:
            limiter.clear_revoked(str(key_id))
    except Exception:  # noqa: BLE001 - PostgreSQL holds the revocation; caches expire within seconds
        logger.warning("could not update the revocation marker of API key %s in Redis", key_id, exc_info=True)


def rate_limiter() -> ApiRateLimiter:
    return _rate_limiter(settings.REDIS_URL)


@lru_cache(maxsize=4)
def _rate_limiter(url: str) -> ApiRateLimiter:
    return ApiRateLimiter(client_from_url(url))


def api_key_check(raw: str, *, now=time.monotonic) -> ApiKey | None:
    """The active key matching ``raw``, or None. Lookups are cached briefly per process.

    Hashes are compared in constant time, and a prefix that matches no key is
    compared against a dummy hash so that misses and hits take the same time.
    """
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    prefix = raw[len(KEY_PREFIX):].split("_", 1)[0]
    digest = _hash(raw)
    cached = _cache.get(digest)
    if cached and cached[0] > now():
        key = cached[1]
    else:
        key = ApiKey.objects.filter(prefix=prefix).first() if 0 < len(prefix) <= 16 else None
        matches = hmac.compare_digest(key.key_hash if key is not None else _DUMMY_HASH, digest)
        if not matches or (key is not None and not key.is_active):
            key = None
        if len(_cache) > 10_000:  # random wrong keys must not grow it without bound
            _cache.clear()
        _cache[digest] = (now() + settings.NOTIFIER_API_KEY_CACHE_SECONDS, key)
        if key is not None:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def api_key_cached(raw: str, *, now=time.monotonic) -> ApiKey | None:
    """What ``api_key_check(raw)`` would answer from this process's cache, without the database:
    the key if a lookup found it active within the cache's lifetime, else None (ask ``api_key_check``)."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    cached = _cache.get(_hash(raw))
    return cached[1] if cached and cached[0] > now() else None


def clear_cache() -> None:
    _cache.clear()
