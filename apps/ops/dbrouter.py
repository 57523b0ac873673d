"""Read replica routing: ``DATABASE_REPLICA_URL`` adds a ``replica`` database for list reads.

Everything goes to the primary (``default``) except the ORM reads of the views decorated with
``@reads_from_replica``: ``GET /api/v1/notifications/`` and a recipient's inbox list. Even those stay
on the primary

- inside a transaction (``transaction.atomic``): a read there may need the transaction's own writes;
- for a client that wrote recently (read-your-writes): any write request of an API key (or of a
  recipient token) pins that client to the primary for at least ``NOTIFIER_REPLICA_PIN_SECONDS``,
  shared by every web process through a Redis key with that much left to live; a client that
  creates a notification and lists right after sees it;
- when the replica cannot be reached: the view is run again on the primary.

Everything that must see the latest data is never routed: creates, idempotency checks, the worker
claim and results, dispatcher and sweep, ``GET /api/v1/notifications/{id}/`` (a lagging replica
would answer 404 right after a POST), authentication, the admin. Migrations run on the primary
only. Without ``DATABASE_REPLICA_URL`` nothing here is installed (no router, no middleware).

Recording a write costs one Redis SET per client, web process and ``NOTIFIER_REPLICA_PIN_SECONDS``
(the key lives twice that long, so it is refreshed at most once per window); a routed read costs one
Redis GET.
"""
from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Callable, Iterable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
PIN_KEY = "replica-pin:"  # + client identity; in Django's cache (Redis, KEY_PREFIX notifier)
_replica_reads: ContextVar[bool] = ContextVar("notifier_replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class ReplicaRouter:
    """DATABASE_ROUTERS entry, installed with DATABASE_REPLICA_URL."""

    def db_for_read(self, model, **hints):
        if _replica_reads.get() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, two servers

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA


@contextmanager
def replica_reads():
    """ORM reads in this block go to the replica (when configured and outside a transaction)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


# --- read-your-writes ------------------------------------------------------------------------

def client_identity(auth) -> str | None:
    """Who wrote or reads: ``k<api key id>`` or ``r<recipient id>`` (recipient token); None if anonymous."""
    if auth is None:
        return None
    from apps.inbox.tokens import RecipientToken

    if isinstance(auth, RecipientToken):
        return f"r{auth.recipient_id}"
    pk = getattr(auth, "pk", None)
    return f"k{pk}" if pk is not None else None


class WritePins:
    """Which clients wrote within the last ``window`` seconds (so read from the primary)."""

    def __init__(self, *, window: float, cache=None, clock: Callable[[], float] = time.monotonic,
                 max_local: int = 10_000):
        self.window = window
        self._cache = cache
        self.clock = clock
        self.max_local = max_local
        self._refreshed: dict[str, float] = {}  # identity -> when this process last set its key

    @property
    def cache(self):
        if self._cache is None:
            from django.core.cache import cache

            self._cache = cache
        return self._cache

    def note_write(self, identity: str | None) -> None:
        """``identity`` wrote: pin it for at least ``window`` seconds from now."""
        if not identity or self.window <= 0:
            return
        now = self.clock()
        last = self._refreshed.get(identity)
        if last is not None and now - last < self.window:
            return  # the key set then lives until last + 2 × window > now + window
        try:
            self.cache.set(PIN_KEY + identity, 1, timeout=math.ceil(2 * self.window))
        except Exception:  # noqa: BLE001 - no Redis: reads find no pin either and go to the primary
            logger.warning("could not record a write for read-your-writes", exc_info=True)
            return
        if len(self._refreshed) >= self.max_local:
            self._refreshed.clear()
        self._refreshed[identity] = now

    def note_writes(self, identities: Iterable[str | None]) -> None:
        for identity in set(identities):
            self.note_write(identity)

    def pinned(self, identity: str | None) -> bool:
        """Whether ``identity`` must read from the primary (it wrote recently, or that cannot be told)."""
        if self.window <= 0:
            return False
        if not identity:
            return False
        try:
            return self.cache.get(PIN_KEY + identity) is not None
        except Exception:  # noqa: BLE001 - cannot tell: the primary is always right
            logger.warning("could not read the read-your-writes pin; reading from the primary", exc_info=True)
            return True


_pins: WritePins | None = None


def write_pins() -> WritePins | None:
    """The process's pins, or None without a replica."""
    global _pins
    if not replica_configured():
        return None
    window = settings.NOTIFIER_REPLICA_PIN_SECONDS
    if _pins is None or _pins.window != window:
        _pins = WritePins(window=window)
    return _pins


def note_api_key_writes(api_key_ids: Iterable[int | None]) -> None:
    """The group committer's requests of these keys were committed (express creates skip the middleware)."""
    pins = write_pins()
    if pins is not None:
        pins.note_writes(f"k{pk}" for pk in api_key_ids if pk is not None)


class ReplicaPinMiddleware:
    """Installed with DATABASE_REPLICA_URL: a write request (any method but GET, HEAD, OPTIONS) of an
    authenticated client pins it to the primary before its answer leaves."""

    SAFE = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in self.SAFE:
            identity = client_identity(getattr(request, "auth", None))  # DRF sets it on the Django request
            if identity:
                pins = write_pins()
                if pins is not None:
                    pins.note_write(identity)
        return response


# After the replica failed, this process reads from the primary for this long before trying it again
# (a replica host that does not answer would otherwise cost every list read its connect timeout).
REPLICA_RETRY_AFTER = 10.0
_replica_failed_at = float("-inf")


def reads_from_replica(view_method):
    """For a read-only view method: its ORM reads go to the replica, unless the client is pinned to
    the primary; a replica that cannot be reached means the primary answers."""

    @wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        global _replica_failed_at
        pins = write_pins()
        if (pins is None or time.monotonic() - _replica_failed_at < REPLICA_RETRY_AFTER
                or pins.pinned(client_identity(request.auth))):
            return view_method(self, request, *args, **kwargs)
        try:
            with replica_reads():
                return view_method(self, request, *args, **kwargs)
        except (OperationalError, InterfaceError):
            _replica_failed_at = time.monotonic()
            logger.warning("the read replica failed; reading from the primary for %.0f s", REPLICA_RETRY_AFTER,
                           exc_info=True)
            try:
                connections[REPLICA].close()
            except Exception:  # noqa: BLE001
                pass
            return view_method(self, request, *args, **kwargs)

    return wrapper
