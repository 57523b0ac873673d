"""Settings every environment shares, read from the environment with safe local defaults.

``config.settings`` picks ``local`` (DEBUG on) or ``production`` (DEBUG off) on top of this module; the
test suite runs ``config.settings.test``. Each environment variable is read in exactly one place, with one
default: here, or in the module of its concern (database, delivery, channels, queues), all of which this
module gathers.

A ``.env`` file at the project root (written by ``make`` for local use and
never committed; ``NOTIFIER_DOTENV`` names another file) is loaded first
without overriding real environment variables.
"""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from notifier.env import debug_enabled, env_bool, env_float, env_int, env_list, env_str, load_project_dotenv, log_format
from notifier.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
load_project_dotenv()

DEBUG = debug_enabled()
# Empty here: local.py puts a development key in, production.py refuses to start without one.
SECRET_KEY = env_str("SECRET_KEY") or ""

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
    "apps.broadcasts",
    "apps.workflows",
    "apps.idempotency",
    "apps.api",
]

MIDDLEWARE = [
    "apps.ops.middleware.RequestIdMiddleware",  # operations: X-Request-ID into logs and tasks
    "apps.api.middleware.RejectNulMiddleware",
    "apps.ops.middleware.MetricsMiddleware",  # operations: API latency and status codes
    "apps.api.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's auth and messages middleware, skipped for /api/ (browser pages only).
    "apps.ops.middleware.AuthenticationMiddleware",
    "apps.ops.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: its process_exception sees a view's error first (a database outage answers 503, not 500).
    "apps.api.errors.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
# Threads that run the sync (WSGI) Django app inside the ASGI server (config/asgi.py).
NOTIFIER_WEB_THREADS = env_int("NOTIFIER_WEB_THREADS", 8)
# Paths served by Django's ASGI handler (async views) instead of the thread pool.
NOTIFIER_ASYNC_PATHS = env_list("NOTIFIER_ASYNC_PATHS", ["/api/v1/inbox/stream/"])


# The settings of each concern, after the dotenv is loaded.
from .database import *  # noqa: E402,F401,F403
from .database import DATABASE_REPLICA_URL  # noqa: E402
from .delivery import *  # noqa: E402,F401,F403
from .channels import *  # noqa: E402,F401,F403
from .queues import *  # noqa: E402,F401,F403

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
    "DEFAULT_PARSER_CLASSES": ["apps.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["apps.api.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.api.negotiation.JSONFirstContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.api.errors.exception_handler",
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
        # A broadcast's status beside a notification's: both enums named, not StatusXXXEnum.
        "StatusEnum": "apps.notifications.models.Status",
        "BroadcastStatusEnum": "apps.broadcasts.models.BroadcastStatus",
    },
}


# --- Logging (operations) ---------------------------------------------------------------
# LOG_FORMAT=json (one JSON object per line, personal data masked; the default
# when DEBUG is off) or plain (the default when DEBUG is on). The delivery log
# (one line per result) has its own level for very high volumes.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = log_format()
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
# Optional encryption at rest of Recipient.email/phone: Fernet keys, comma-separated,
# the first encrypts, all decrypt (rotation). Unset: stored in plain text.
NOTIFIER_FIELD_ENCRYPTION_KEY = env_str("NOTIFIER_FIELD_ENCRYPTION_KEY", "") or ""

if DATABASE_REPLICA_URL:  # a write pins its client to the primary before the answer leaves
    MIDDLEWARE.insert(MIDDLEWARE.index("apps.ops.middleware.MetricsMiddleware") + 1,
                      "apps.ops.dbrouter.ReplicaPinMiddleware")
# LOGGING above, then notifier.pii.PiiFilter on every handler (Django's own defaults included).
LOGGING_CONFIG = "notifier.pii.configure_logging"

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
SECURE_PROXY_SSL_HEADER = None
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER", [])
if _proxy_header:
    if len(_proxy_header) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])
