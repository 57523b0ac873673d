"""Settings: the channels and their providers (SMTP relays, Twilio, FCM, Web Push), the in-app inbox and its
live stream, outbound webhooks."""
from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from notifier.env import env_bool, env_float, env_int, env_list, env_str

from .database import DATABASES

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
