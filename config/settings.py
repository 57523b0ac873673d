"""Settings, read from the environment with safe local defaults.

A ``.env`` file at the project root (written by ``make`` for local use and
never committed) is loaded first without overriding real environment
variables.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from notifier.env import env_bool, env_float, env_int, env_list, env_str, load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

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
]

MIDDLEWARE = [
    "apps.notifications.api.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.notifications.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "notifier API",
    "DESCRIPTION": "Send email, SMS, push and in-app notifications.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

# --- Email (SMTP) ---------------------------------------------------------------
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "notifier@localhost")

# --- Providers ------------------------------------------------------------------
_PROVIDER_DEFAULTS = {"email": ["smtp"], "sms": ["console"], "push": ["console"], "in_app": ["inbox"]}
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
NOTIFIER_DISPATCH_INTERVAL = env_float("NOTIFIER_DISPATCH_INTERVAL", 1.0)
NOTIFIER_SWEEP_INTERVAL = env_float("NOTIFIER_SWEEP_INTERVAL", 30.0)
NOTIFIER_CHUNK_SIZE = env_int("NOTIFIER_CHUNK_SIZE", 500)
# --- Throughput (issue 7): most items per POST /api/v1/notifications/batch/ ---
NOTIFIER_BATCH_MAX = env_int("NOTIFIER_BATCH_MAX", 1000)
# Small creates committed within this many ms share one delivery message (0 = publish each alone);
# a request waits at most NOTIFIER_PUBLISH_WAIT s for the broker's confirm of its message.
NOTIFIER_PUBLISH_COALESCE_MS = env_float("NOTIFIER_PUBLISH_COALESCE_MS", 2.0)
NOTIFIER_PUBLISH_WAIT = env_float("NOTIFIER_PUBLISH_WAIT", 5.0)
NOTIFIER_PUBLIC_URL = env_str("NOTIFIER_PUBLIC_URL", "http://127.0.0.1:8000")

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
CELERY_TASK_QUEUES = tuple(
    Queue(name, _exchange, routing_key=name, durable=True, queue_arguments=_queue_args)
    for name in PRIORITY_QUEUES.values()
)
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
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_WORKER_SEND_TASK_EVENTS", True)
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "notifier-dispatch-due": {
        "task": "notifier.dispatch_due",
        "schedule": NOTIFIER_DISPATCH_INTERVAL,
        "options": {"queue": PRIORITY_QUEUES["high"], "expires": max(NOTIFIER_DISPATCH_INTERVAL * 5, 5)},
    },
    "notifier-sweep": {
        "task": "notifier.sweep",
        "schedule": NOTIFIER_SWEEP_INTERVAL,
        "options": {"queue": PRIORITY_QUEUES["high"], "expires": max(NOTIFIER_SWEEP_INTERVAL * 2, 10)},
    },
}

# --- Logging ---------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
