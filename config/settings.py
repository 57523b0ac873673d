"""Settings, read from the environment with safe local defaults.

A ``.env`` file at the project root (written by ``make`` for local use and
never committed; ``NOTIFIER_DOTENV`` names another file) is loaded first
without overriding real environment variables.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from notifier.env import env_bool, env_float, env_int, env_list, env_str, load_project_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_project_dotenv()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "insecure-local-development-key-only-used-when-DEBUG-is-on"
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "apps.apikeys",
    "apps.recipients",
    "apps.notifications",
    "apps.schedules",
    "apps.templating",
    "apps.providers",
    "apps.ops",
    "apps.inbox",
    "apps.webhooks",
    "apps.topics",
    "apps.workflows",
]

MIDDLEWARE = [
    "apps.ops.middleware.RequestIdMiddleware",  # operations: X-Request-ID into logs and tasks
    "apps.ops.middleware.MetricsMiddleware",  # operations: API latency and status codes
    "apps.notifications.api.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's auth and messages middleware, skipped for /api/ (browser pages only).
    "apps.ops.middleware.AuthenticationMiddleware",
    "apps.ops.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", "postgres://127.0.0.1:5432/notifier")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600), conn_health_checks=True,
    )
}
# Django's backend, but queries are recorded (connection.queries) only with DEBUG_SQL=1, not with every
# DEBUG=1: on the bulk paths that record cost a large part of the CPU (config/postgresql/base.py).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "config.postgresql"
DEBUG_SQL = env_bool("DEBUG_SQL", False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Operations: DATABASE_POOLER=pgbouncer when DATABASE_URL points at pgbouncer in
# transaction mode: no server-side cursors, no automatic prepared statements.
DATABASE_POOLER = env_str("DATABASE_POOLER", "")
# Scaling: a streaming replica for list and inbox reads (apps/ops/dbrouter.py, docs/scaling.md). Unset: none.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "") or ""
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600), conn_health_checks=True,
    )
    if DATABASES["replica"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["replica"]["ENGINE"] = "config.postgresql"
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# --- Request limits -----------------------------------------------------------
NOTIFIER_MAX_BODY_BYTES = env_int("NOTIFIER_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(NOTIFIER_MAX_BODY_BYTES, 2_621_440)

# --- REST framework ----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.apikeys.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.apikeys.permissions.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["apps.notifications.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["apps.notifications.api.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.notifications.api.negotiation.JSONFirstContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.notifications.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["apps.apikeys.throttling.ApiKeyRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "notifier API",
    "DESCRIPTION": "Send email, SMS, push and in-app notifications.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Channels clients may post (ChannelEnum) and every channel a notification may have (webhook too).
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": [("email", "Email"), ("sms", "Sms"), ("push", "Push"), ("in_app", "In App")],
        "NotificationChannelEnum": "apps.notifications.models.Channel",
    },
}

# --- Email (SMTP) ---------------------------------------------------------------
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
# The local SMTP sink's port by default (SMTP_SINK_PORT moves the sink that `make run` starts).
EMAIL_PORT = env_int("EMAIL_PORT", env_int("SMTP_SINK_PORT", 1025))
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "notifier@localhost")

# --- Providers ------------------------------------------------------------------
_PROVIDER_DEFAULTS = {"email": ["smtp"], "sms": ["console"], "push": ["console"], "in_app": ["inbox"],
                      "webhook": ["http"]}
NOTIFIER_PROVIDERS: dict[str, list[str]] = {}
NOTIFIER_PROVIDERS_EXPLICIT: set[str] = set()
for _channel, _default in _PROVIDER_DEFAULTS.items():
    _var = f"NOTIFIER_{_channel.upper()}_PROVIDERS"
    if os.environ.get(_var):
        NOTIFIER_PROVIDERS_EXPLICIT.add(_channel)
    NOTIFIER_PROVIDERS[_channel] = env_list(_var, _default)

# --- Delivery policy --------------------------------------------------------------
NOTIFIER_RETRY_BACKOFF_BASE = env_float("NOTIFIER_RETRY_BACKOFF_BASE", 10.0)
NOTIFIER_RETRY_BACKOFF_MAX = env_float("NOTIFIER_RETRY_BACKOFF_MAX", 300.0)
# A row left `sending` this long after its claim is put back (the worker died).
NOTIFIER_CLAIM_TIMEOUT = env_float("NOTIFIER_CLAIM_TIMEOUT", 330.0)
# A row left `queued` this long with no claim is republished (its message was lost).
NOTIFIER_REQUEUE_AFTER = env_float("NOTIFIER_REQUEUE_AFTER", 600.0)
# A row whose claim timed out this many times (its worker died or hung each time) is `failed` and
# dead-lettered instead of being put back again.
NOTIFIER_MAX_CLAIM_TIMEOUTS = env_int("NOTIFIER_MAX_CLAIM_TIMEOUTS", 3)
# A worker stops handing a chunk's notifications to providers after this many seconds (at most half
# of the task's soft and hard time limits and of NOTIFIER_CLAIM_TIMEOUT), records what it sent and
# republishes the rest in two smaller chunks. The only limit under a pool without time limits (threads).
NOTIFIER_CHUNK_DEADLINE = env_float("NOTIFIER_CHUNK_DEADLINE", 60.0)
if NOTIFIER_CHUNK_DEADLINE <= 0 or NOTIFIER_MAX_CLAIM_TIMEOUTS < 1:
    raise ImproperlyConfigured("NOTIFIER_CHUNK_DEADLINE must be > 0 and NOTIFIER_MAX_CLAIM_TIMEOUTS >= 1")
NOTIFIER_DISPATCH_INTERVAL = env_float("NOTIFIER_DISPATCH_INTERVAL", 1.0)
NOTIFIER_SWEEP_INTERVAL = env_float("NOTIFIER_SWEEP_INTERVAL", 30.0)
# Result hooks (inbox entries, webhook events) run after the results' commit from an outbox row
# (apps/notifications/outbox.py). The beat job runs rows left behind or failed every this many seconds;
# a row whose hook failed this many times is dead (kept for the admin).
NOTIFIER_RESULT_HOOK_INTERVAL = env_float("NOTIFIER_RESULT_HOOK_INTERVAL", 5.0)
NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS = env_int("NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS", 10)
NOTIFIER_CHUNK_SIZE = env_int("NOTIFIER_CHUNK_SIZE", 1000)
# --- Throughput (issue 7): most items per POST /api/v1/notifications/batch/ ---
NOTIFIER_BATCH_MAX = env_int("NOTIFIER_BATCH_MAX", 1000)
# Small creates committed within this many ms share one delivery message (0 = publish each alone);
# a request waits at most NOTIFIER_PUBLISH_WAIT s for the broker's confirm of its message.
NOTIFIER_PUBLISH_COALESCE_MS = env_float("NOTIFIER_PUBLISH_COALESCE_MS", 2.0)
NOTIFIER_PUBLISH_WAIT = env_float("NOTIFIER_PUBLISH_WAIT", 5.0)
# Backpressure (backlog.py): a batch waits while a queue it feeds holds more than NOTIFIER_BACKLOG_MAX
# ready delivery messages (chunks of up to NOTIFIER_CHUNK_SIZE ids), for at most NOTIFIER_BACKLOG_WAIT s,
# and is then accepted anyway. 0 turns it off.
NOTIFIER_BACKLOG_MAX = env_int("NOTIFIER_BACKLOG_MAX", 30)
NOTIFIER_BACKLOG_WAIT = env_float("NOTIFIER_BACKLOG_WAIT", 2.0)
# Single creates of concurrent requests share one policy check, insert and publish (groupcommit.py).
NOTIFIER_GROUP_COMMIT = env_bool("NOTIFIER_GROUP_COMMIT", True)
# Their requests are answered once their rows are committed, and the group's confirmed publish follows
# on the process's publisher thread (a failed or lost publish: the dispatcher and the sweep republish).
# On: each request also waits for the broker's confirm of its message (under load RabbitMQ confirms a
# persistent message to a busy classic queue only once a worker has acknowledged it).
NOTIFIER_ANSWER_AFTER_CONFIRM = env_bool("NOTIFIER_ANSWER_AFTER_CONFIRM", False)
# Created rows whose publish is still unconfirmed this long after their commit (their web process died in
# between: a PendingPublish entry is left) are republished by the dispatcher. 0: no entries, the sweep only.
NOTIFIER_PUBLISH_GRACE = env_float("NOTIFIER_PUBLISH_GRACE", 5.0)
# The common single create answered on the web process's event loop, without Django's request
# cycle (apps/notifications/api/express.py; needs the group committer).
NOTIFIER_EXPRESS_CREATE = env_bool("NOTIFIER_EXPRESS_CREATE", True)
NOTIFIER_PUBLIC_URL = env_str("NOTIFIER_PUBLIC_URL", "http://127.0.0.1:8000")

# --- Providers: Twilio, FCM, Web Push, extra SMTP relays, circuit breakers -----------
# Documented in docs/providers.md.
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL", "")  # empty: https://api.twilio.com
FCM_CREDENTIALS_FILE = env_str("FCM_CREDENTIALS_FILE", "")
FCM_API_BASE_URL = env_str("FCM_API_BASE_URL", "https://fcm.googleapis.com")
FCM_PROJECT_ID = env_str("FCM_PROJECT_ID", "")  # empty: the credentials file's project_id
VAPID_PRIVATE_KEY = env_str("VAPID_PRIVATE_KEY", "")  # a PEM file path or the base64url key
VAPID_SUBJECT = env_str("VAPID_SUBJECT", "")  # mailto:ops@example.com or an https URL
WEBPUSH_TTL = env_int("WEBPUSH_TTL", 86400)
# Web Push endpoints come from clients (subscriptions, device tokens): https to public addresses only,
# checked at registration and right before each connection (notifier/netguard.py), unless on
# (development and tests, with a push service on 127.0.0.1 over plain http).
NOTIFIER_PUSH_ALLOW_PRIVATE = env_bool("NOTIFIER_PUSH_ALLOW_PRIVATE", False)
NOTIFIER_PROVIDER_TIMEOUT = env_float("NOTIFIER_PROVIDER_TIMEOUT", 10.0)
NOTIFIER_PROVIDER_CONCURRENCY = env_int("NOTIFIER_PROVIDER_CONCURRENCY", 8)
# SMTP sessions a worker process holds open at once to each relay (a chunk's mail is shared among them).
NOTIFIER_SMTP_CONNECTIONS = env_int("NOTIFIER_SMTP_CONNECTIONS", 4)
if NOTIFIER_SMTP_CONNECTIONS < 1:
    raise ImproperlyConfigured("NOTIFIER_SMTP_CONNECTIONS must be >= 1")
NOTIFIER_CIRCUIT_THRESHOLD = env_int("NOTIFIER_CIRCUIT_THRESHOLD", 5)
NOTIFIER_CIRCUIT_COOLDOWN = env_float("NOTIFIER_CIRCUIT_COOLDOWN", 30.0)
NOTIFIER_UNSUBSCRIBE_MAILTO = env_str("NOTIFIER_UNSUBSCRIBE_MAILTO", "")
# Real providers are the default once configured; `console` only where nothing is.
if "sms" not in NOTIFIER_PROVIDERS_EXPLICIT and TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN:
    NOTIFIER_PROVIDERS["sms"] = ["twilio"]
if "push" not in NOTIFIER_PROVIDERS_EXPLICIT and (FCM_CREDENTIALS_FILE or VAPID_PRIVATE_KEY):
    NOTIFIER_PROVIDERS["push"] = [name for name, configured in (("fcm", FCM_CREDENTIALS_FILE),
                                                                ("webpush", VAPID_PRIVATE_KEY)) if configured]
# Extra SMTP relays for failover: NOTIFIER_EMAIL_PROVIDERS=smtp,smtp2 reads EMAIL2_HOST, EMAIL2_PORT, ...
# (the first relay, `smtp`, is Django's own EMAIL_* settings).
NOTIFIER_SMTP_RELAYS: dict[str, dict] = {}
for _name in NOTIFIER_PROVIDERS["email"]:
    if _name.startswith("smtp") and _name[4:].isdigit():
        _p = f"EMAIL{_name[4:]}_"
        NOTIFIER_SMTP_RELAYS[_name] = {
            "host": env_str(f"{_p}HOST", ""), "port": env_int(f"{_p}PORT", EMAIL_PORT),
            "username": env_str(f"{_p}HOST_USER", ""), "password": env_str(f"{_p}HOST_PASSWORD", ""),
            "use_tls": env_bool(f"{_p}USE_TLS", False), "use_ssl": env_bool(f"{_p}USE_SSL", False),
            "timeout": env_float(f"{_p}TIMEOUT", EMAIL_TIMEOUT),
        }
# --- In-app inbox, recipient tokens, live stream (apps.inbox) ------------------------
# Recipient tokens are HS256 JWTs; the key is derived from this value, or from SECRET_KEY when unset.
NOTIFIER_RECIPIENT_TOKEN_KEY = env_str("NOTIFIER_RECIPIENT_TOKEN_KEY", "") or ""
NOTIFIER_RECIPIENT_TOKEN_TTL = env_int("NOTIFIER_RECIPIENT_TOKEN_TTL", 900)
NOTIFIER_INBOX_STREAM_HEARTBEAT = env_float("NOTIFIER_INBOX_STREAM_HEARTBEAT", 15.0)
NOTIFIER_INBOX_STREAM_RETRY_MS = env_int("NOTIFIER_INBOX_STREAM_RETRY_MS", 3000)
# Redis pub/sub channels are not per Redis database: the prefix keeps deployments (and test runs) apart.
NOTIFIER_INBOX_PUBSUB_PREFIX = env_str(
    "NOTIFIER_INBOX_PUBSUB_PREFIX", f"notifier:{DATABASES['default'].get('NAME') or 'notifier'}:inbox:")
# Threads that run the sync (WSGI) Django app inside the ASGI server (config/asgi.py).
NOTIFIER_WEB_THREADS = env_int("NOTIFIER_WEB_THREADS", 8)
# Paths served by Django's ASGI handler (async views) instead of the thread pool.
NOTIFIER_ASYNC_PATHS = env_list("NOTIFIER_ASYNC_PATHS", ["/api/v1/inbox/stream/"])

# --- Outbound webhooks (apps.webhooks, notifier/channels/webhook.py) -------------------
# Refuse endpoints that resolve to private, loopback, link-local or reserved addresses (SSRF) unless on.
NOTIFIER_WEBHOOK_ALLOW_PRIVATE = env_bool("NOTIFIER_WEBHOOK_ALLOW_PRIVATE", False)
NOTIFIER_WEBHOOK_TIMEOUT = env_float("NOTIFIER_WEBHOOK_TIMEOUT", 10.0)
NOTIFIER_WEBHOOK_MAX_RESPONSE_BYTES = env_int("NOTIFIER_WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024)
# An endpoint is disabled after this many events in a row failed for good (retries exhausted).
NOTIFIER_WEBHOOK_DISABLE_AFTER = env_int("NOTIFIER_WEBHOOK_DISABLE_AFTER", 5)
NOTIFIER_WEBHOOK_PRIORITY = env_str("NOTIFIER_WEBHOOK_PRIORITY", "normal")
# Endpoints a project may register (each event fans out to at most this many deliveries).
NOTIFIER_WEBHOOK_MAX_ENDPOINTS = env_int("NOTIFIER_WEBHOOK_MAX_ENDPOINTS", 20)
# How the webhook provider finds endpoint URLs and secrets (one call per chunk).
NOTIFIER_WEBHOOK_ENDPOINT_RESOLVER = "apps.webhooks.selectors.endpoints_for_delivery"

# --- Celery on RabbitMQ -------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
NOTIFIER_EXCHANGE = "notifications"
NOTIFIER_DEAD_EXCHANGE = "notifications.dlx"
NOTIFIER_DEAD_QUEUE = "notifications.dead"
PRIORITY_QUEUES = {p: f"notifications.{p}" for p in ("high", "normal", "low")}

_exchange = Exchange(NOTIFIER_EXCHANGE, type="direct", durable=True)
_queue_args = {
    "x-dead-letter-exchange": NOTIFIER_DEAD_EXCHANGE,
    "x-dead-letter-routing-key": NOTIFIER_DEAD_QUEUE,
}
# Operations: `quorum` on a RabbitMQ cluster (replicated queues, see docs/scaling.md);
# `classic` (default) on one node. Changing it needs the queues deleted and redeclared.
NOTIFIER_QUEUE_TYPE = env_str("NOTIFIER_QUEUE_TYPE", "classic")
if NOTIFIER_QUEUE_TYPE not in ("classic", "quorum"):
    raise ImproperlyConfigured(f"NOTIFIER_QUEUE_TYPE={NOTIFIER_QUEUE_TYPE!r}: use classic or quorum")
if NOTIFIER_QUEUE_TYPE == "quorum":
    _queue_args["x-queue-type"] = "quorum"
# Beat's own jobs (the dispatcher, the sweep, the idempotency purge) run on a queue and worker pool of their
# own (Procfile worker-maintenance): slow high-priority chunks never hold up scheduled sends and retries.
# No dead-letter arguments: a lost run of a periodic job is simply made good by the next one.
MAINTENANCE_QUEUE = "notifications.maintenance"
CELERY_TASK_QUEUES = tuple(
    Queue(name, _exchange, routing_key=name, durable=True, queue_arguments=_queue_args)
    for name in PRIORITY_QUEUES.values()
) + (Queue(MAINTENANCE_QUEUE, _exchange, routing_key=MAINTENANCE_QUEUE, durable=True,
           queue_arguments={"x-queue-type": "quorum"} if NOTIFIER_QUEUE_TYPE == "quorum" else None),)
_MAINTENANCE_TASKS = ("notifier.dispatch_due", "notifier.sweep", "notifier.result_hooks", "notifier.idempotency_purge")
CELERY_TASK_ROUTES = {name: {"queue": MAINTENANCE_QUEUE, "routing_key": MAINTENANCE_QUEUE}
                      for name in _MAINTENANCE_TASKS}
CELERY_TASK_DEFAULT_QUEUE = PRIORITY_QUEUES["normal"]
CELERY_TASK_DEFAULT_EXCHANGE = NOTIFIER_EXCHANGE
CELERY_TASK_DEFAULT_ROUTING_KEY = PRIORITY_QUEUES["normal"]
CELERY_TASK_DEFAULT_DELIVERY_MODE = "persistent"
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_POOL_LIMIT = env_int("CELERY_BROKER_POOL_LIMIT", 10)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 2)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 270)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events (three more messages per task) feed Flower's task pages; off by default for throughput.
# Flower's worker and queue pages need none of them. CELERY_WORKER_SEND_TASK_EVENTS=1 turns them on.
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_WORKER_SEND_TASK_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_TIMEZONE = "UTC"
# Celery's consumer minus native delayed delivery (ETA tasks on quorum queues; notifier has none).
CELERY_WORKER_CONSUMER = "config.celery_app:NotifierConsumer"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


# --- Beat schedule (scheduling) ----------------------------------------------------
# django-celery-beat's DatabaseScheduler stores these as PeriodicTasks with an
# IntervalSchedule whose `every` is an integer number of seconds (0.25 would be
# stored as 0), and it reads `expire_seconds`, not `expires`; the file-based
# scheduler reads `expires`. So: whole seconds, and both expiry options.
def _beat_entry(task: str, every: float, expire: int) -> dict:
    seconds = max(1, math.ceil(every))
    return {"task": task, "schedule": seconds,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": expire, "expire_seconds": expire}}


CELERY_BEAT_SCHEDULE = {
    "notifier-dispatch-due": _beat_entry("notifier.dispatch_due", NOTIFIER_DISPATCH_INTERVAL,
                                         max(math.ceil(NOTIFIER_DISPATCH_INTERVAL * 5), 5)),
    "notifier-sweep": _beat_entry("notifier.sweep", NOTIFIER_SWEEP_INTERVAL,
                                  max(math.ceil(NOTIFIER_SWEEP_INTERVAL * 2), 10)),
    "notifier-result-hooks": _beat_entry("notifier.result_hooks", NOTIFIER_RESULT_HOOK_INTERVAL,
                                         max(math.ceil(NOTIFIER_RESULT_HOOK_INTERVAL * 2), 10)),
}
# Rows one dispatcher transaction releases at most (it loops until nothing is due).
NOTIFIER_DISPATCH_LIMIT = env_int("NOTIFIER_DISPATCH_LIMIT", 5000)
# No result backend, so no daily `celery.backend_cleanup` entry in the database schedule.
CELERY_RESULT_EXPIRES = None
# Recurring sends (apps.schedules): the queue their `notifier.send_recurring` runs on,
# and how many recipients one recurring send may name.
NOTIFIER_RECURRING_QUEUE = env_str("NOTIFIER_RECURRING_QUEUE", PRIORITY_QUEUES["normal"])
NOTIFIER_RECURRING_MAX_RECIPIENTS = env_int("NOTIFIER_RECURRING_MAX_RECIPIENTS", 1000)
if NOTIFIER_RECURRING_QUEUE not in PRIORITY_QUEUES.values():
    raise ImproperlyConfigured(f"NOTIFIER_RECURRING_QUEUE must be one of {', '.join(PRIORITY_QUEUES.values())}")

# --- Logging (operations) ---------------------------------------------------------------
# LOG_FORMAT=json (one JSON object per line, personal data masked; the default
# when DEBUG is off) or plain (the default when DEBUG is on). The delivery log
# (one line per result) has its own level for very high volumes.
from notifier.logs import logging_config  # noqa: E402

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or plain")
# One line per delivery result (notifier.delivery) and Celery's two lines per task (received, succeeded) cost
# CPU at thousands a second; by default only failures and problems are logged there. INFO: every one.
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL, delivery_level=env_str("DELIVERY_LOG_LEVEL", "WARNING"),
                         task_level=env_str("WORKER_TASK_LOG_LEVEL", "WARNING"))

# --- Operations: readiness, metrics, Sentry --------------------------------------------------
NOTIFIER_READINESS_TIMEOUT = env_float("NOTIFIER_READINESS_TIMEOUT", 2.0)
NOTIFIER_METRICS_QUEUE_CACHE = env_float("NOTIFIER_METRICS_QUEUE_CACHE", 5.0)
SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production")
if SENTRY_DSN:
    from notifier.sentry import git_sha, init_sentry

    init_sentry(
        dsn=SENTRY_DSN, release=env_str("SENTRY_RELEASE") or git_sha(BASE_DIR), environment=SENTRY_ENVIRONMENT,
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        enable_logs=env_bool("SENTRY_ENABLE_LOGS", False),
    )

# --- Security and abuse control ---------------------------------------------------------
# API keys: per-process cache of key lookups. Revocation is immediate anyway (a Redis
# marker read by the throttle script); this TTL bounds how long other admin edits
# (scopes, channels, limits) and, when Redis is unreachable, a revocation take to apply.
NOTIFIER_API_KEY_CACHE_SECONDS = env_float("NOTIFIER_API_KEY_CACHE_SECONDS", 5.0)
# Throttling per API key (token bucket in Redis): requests per second and burst.
# Per-key overrides in the admin (ApiKey.rate_limit / rate_burst); a rate of 0 is unlimited.
NOTIFIER_API_RATE = env_float("NOTIFIER_API_RATE", 2000.0)
NOTIFIER_API_BURST = env_int("NOTIFIER_API_BURST", 4000)
# Idempotency-Key: how long a key's first response is kept, and after how long an
# unfinished first request (its process died) may be taken over by a retry.
NOTIFIER_IDEMPOTENCY_TTL = env_int("NOTIFIER_IDEMPOTENCY_TTL", 24 * 3600)
NOTIFIER_IDEMPOTENCY_LOCK_TIMEOUT = env_float("NOTIFIER_IDEMPOTENCY_LOCK_TIMEOUT", 60.0)
# Per-recipient frequency caps (Category.cap_*): the longest a capped notification is held.
NOTIFIER_FREQUENCY_CAP_MAX_HOLD = env_float("NOTIFIER_FREQUENCY_CAP_MAX_HOLD", 7 * 86400.0)
# Optional encryption at rest of Recipient.email/phone: Fernet keys, comma-separated,
# the first encrypts, all decrypt (rotation). Unset: stored in plain text.
NOTIFIER_FIELD_ENCRYPTION_KEY = env_str("NOTIFIER_FIELD_ENCRYPTION_KEY", "") or ""

INSTALLED_APPS += ["apps.idempotency"]
if DATABASE_REPLICA_URL:  # a write pins its client to the primary before the answer leaves
    MIDDLEWARE.insert(MIDDLEWARE.index("apps.ops.middleware.MetricsMiddleware") + 1,
                      "apps.ops.dbrouter.ReplicaPinMiddleware")
# LOGGING above, then notifier.pii.PiiFilter on every handler (Django's own defaults included).
LOGGING_CONFIG = "notifier.pii.configure_logging"
MIDDLEWARE.insert(1, "apps.notifications.api.middleware.RejectNulMiddleware")
CELERY_BEAT_SCHEDULE["notifier-idempotency-purge"] = _beat_entry("notifier.idempotency_purge", 3600, 3600)

# Production hardening: on by default whenever DEBUG is off.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)/?$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https".
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER", [])
if _proxy_header:
    if len(_proxy_header) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])
