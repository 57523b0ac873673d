"""Settings: PostgreSQL (primary, optional replica, pgbouncer) and the Redis cache."""
from __future__ import annotations

import dj_database_url

from notifier.env import env_bool, env_float, env_int, env_str

DATABASE_URL = env_str("DATABASE_URL", "postgres://127.0.0.1:5432/notifier")
DB_CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 600)


# A database that stops answering without closing its connections (a network partition, a host gone
# without a reset) must not hold a request, a group commit or a worker's chunk for the kernel's
# retransmission timeout (about 15 minutes): libpq gives up a connection attempt after DB_CONNECT_TIMEOUT
# seconds, drops a connection whose sent bytes go unacknowledged for DB_TCP_USER_TIMEOUT seconds, and
# probes an idle one with TCP keepalives. The request then answers 503 (apps/api/errors.py), the chunk is
# retried. A value in DATABASE_URL's query string (`?connect_timeout=…`) wins; 0 turns one off.
DB_CONNECT_TIMEOUT = env_int("DB_CONNECT_TIMEOUT", 5)
DB_TCP_USER_TIMEOUT = env_int("DB_TCP_USER_TIMEOUT", 30)


def _database(url: str) -> dict:
    """Django's backend, but queries are recorded (connection.queries) only with DEBUG_SQL=1, not with every
    DEBUG=1: on the bulk paths that record cost a large part of the CPU (config/postgresql/base.py)."""
    database = dj_database_url.parse(url, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=True)
    if database["ENGINE"] == "django.db.backends.postgresql":
        database["ENGINE"] = "config.postgresql"
        options = database.setdefault("OPTIONS", {})
        if DB_CONNECT_TIMEOUT > 0:
            options.setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
        if DB_TCP_USER_TIMEOUT > 0:
            options.setdefault("tcp_user_timeout", DB_TCP_USER_TIMEOUT * 1000)  # libpq's is in milliseconds
            for name, value in (("keepalives", 1), ("keepalives_idle", 30), ("keepalives_interval", 10),
                                ("keepalives_count", 3)):
                options.setdefault(name, value)
    return database


DATABASES = {"default": _database(DATABASE_URL)}
DEBUG_SQL = env_bool("DEBUG_SQL", False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Operations: DATABASE_POOLER=pgbouncer when DATABASE_URL points at pgbouncer in
# transaction mode: no server-side cursors, no automatic prepared statements.
DATABASE_POOLER = env_str("DATABASE_POOLER", "")
# Scaling: a streaming replica for list and inbox reads (apps/ops/dbrouter.py, docs/scaling.md). Unset: none.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "") or ""
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = _database(DATABASE_REPLICA_URL)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # tests read their own test database
    DATABASE_ROUTERS = ["apps.ops.dbrouter.ReplicaRouter"]
# Read-your-writes: a client that wrote reads lists from the primary for at least this long.
NOTIFIER_REPLICA_PIN_SECONDS = env_float("NOTIFIER_REPLICA_PIN_SECONDS", 5.0)
if DATABASE_POOLER == "pgbouncer":
    for _alias in DATABASES:
        DATABASES[_alias]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES[_alias].setdefault("OPTIONS", {})["prepare_threshold"] = None

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "notifier",
    }
}
