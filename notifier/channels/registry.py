"""Pick provider instances for a channel from settings, in failover order."""
from __future__ import annotations

import os
import re
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import Provider

KNOWN = {
    "email": {"smtp", "console", "null"},
    "sms": {"twilio", "console", "null"},
    "push": {"fcm", "webpush", "console", "null"},
    "in_app": {"inbox"},
    "webhook": {"http", "null"},
}
_EXTRA_SMTP = re.compile(r"^smtp[2-9]$")  # smtp2 ... smtp9: more relays, EMAIL2_* ... EMAIL9_*


def is_known(channel: str, name: str) -> bool:
    return name in KNOWN.get(channel, set()) or (channel == "email" and bool(_EXTRA_SMTP.match(name)))


def build_provider(channel: str, name: str) -> Provider:
    if not is_known(channel, name):
        raise ImproperlyConfigured(f"Unknown provider {name!r} for channel {channel!r}")
    timeout = settings.NOTIFIER_PROVIDER_TIMEOUT
    concurrency = settings.NOTIFIER_PROVIDER_CONCURRENCY
    if name == "console":
        from .console import ConsoleProvider
        return ConsoleProvider(channel)
    if name == "null":
        from .console import NullProvider
        return NullProvider(channel)
    if name == "inbox":
        from .console import InboxProvider
        return InboxProvider(channel)
    if name.startswith("smtp"):
        from .email import SmtpEmailProvider
        relay = _primary_relay() if name == "smtp" else settings.NOTIFIER_SMTP_RELAYS[name]
        return SmtpEmailProvider(
            name=name, host=relay["host"], port=relay["port"], username=relay["username"],
            password=relay["password"], use_tls=relay["use_tls"], use_ssl=relay["use_ssl"],
            from_email=settings.DEFAULT_FROM_EMAIL, timeout=relay["timeout"] or 10,
            public_url=settings.NOTIFIER_PUBLIC_URL, unsubscribe_mailto=settings.NOTIFIER_UNSUBSCRIBE_MAILTO,
            connections=settings.NOTIFIER_SMTP_CONNECTIONS,
        )
    if name == "twilio":
        from .sms import TwilioSmsProvider
        return TwilioSmsProvider(
            account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=settings.TWILIO_FROM_NUMBER, api_base_url=settings.TWILIO_API_BASE_URL,
            status_callback=twilio_status_callback_url(), timeout=timeout, concurrency=concurrency,
        )
    if name == "fcm":
        from .push import FcmPushProvider
        return FcmPushProvider(
            credentials_file=settings.FCM_CREDENTIALS_FILE, api_base_url=settings.FCM_API_BASE_URL,
            project_id=settings.FCM_PROJECT_ID, timeout=timeout, concurrency=concurrency,
        )
    if name == "webpush":
        from .push import WebPushProvider
        return WebPushProvider(
            private_key=settings.VAPID_PRIVATE_KEY, subject=settings.VAPID_SUBJECT, ttl=settings.WEBPUSH_TTL,
            timeout=timeout, concurrency=concurrency, allow_private=settings.NOTIFIER_PUSH_ALLOW_PRIVATE,
        )
    if name == "http":
        from django.utils.module_loading import import_string

        from .webhook import WebhookProvider
        return WebhookProvider(
            resolve_endpoints=import_string(settings.NOTIFIER_WEBHOOK_ENDPOINT_RESOLVER),
            timeout=settings.NOTIFIER_WEBHOOK_TIMEOUT,
            max_response_bytes=settings.NOTIFIER_WEBHOOK_MAX_RESPONSE_BYTES,
            allow_private=settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE,
        )
    raise ImproperlyConfigured(f"Provider {name!r} is not buildable")  # pragma: no cover


def _primary_relay() -> dict:
    """The first relay is Django's own EMAIL_* settings (read now, so overrides apply)."""
    return {
        "host": settings.EMAIL_HOST, "port": settings.EMAIL_PORT, "username": settings.EMAIL_HOST_USER,
        "password": settings.EMAIL_HOST_PASSWORD, "use_tls": settings.EMAIL_USE_TLS,
        "use_ssl": settings.EMAIL_USE_SSL, "timeout": settings.EMAIL_TIMEOUT,
    }


def twilio_status_callback_url() -> str:
    """Where Twilio posts status callbacks; also the URL their signature is checked against."""
    return f"{settings.NOTIFIER_PUBLIC_URL.rstrip('/')}/api/v1/webhooks/twilio/status/"


def provider_names(channel: str) -> list[str]:
    return list(settings.NOTIFIER_PROVIDERS.get(channel, []))


@lru_cache(maxsize=None)
def providers_for(channel: str) -> tuple[Provider, ...]:
    """Providers for ``channel`` in failover order (cached per process)."""
    names = provider_names(channel)
    if not names:
        raise ImproperlyConfigured(f"No provider configured for channel {channel!r}")
    return tuple(build_provider(channel, name) for name in names)


def _missing(*names: str) -> list[str]:
    return [n for n in names if not getattr(settings, n)]


def check_configuration() -> None:
    """Refuse unknown or half-configured providers, and ``console`` outside DEBUG unless chosen explicitly."""
    for channel, names in settings.NOTIFIER_PROVIDERS.items():
        for name in names:
            if not is_known(channel, name):
                raise ImproperlyConfigured(f"Unknown provider {name!r} for channel {channel!r}")
            missing: list[str] = []
            if name == "twilio":
                missing = _missing("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
            elif name == "fcm":
                missing = _missing("FCM_CREDENTIALS_FILE")
                if not missing and not os.path.isfile(settings.FCM_CREDENTIALS_FILE):
                    raise ImproperlyConfigured(f"FCM_CREDENTIALS_FILE={settings.FCM_CREDENTIALS_FILE!r} is not a file")
            elif name == "webpush":
                missing = _missing("VAPID_PRIVATE_KEY", "VAPID_SUBJECT")
            elif _EXTRA_SMTP.match(name) and not settings.NOTIFIER_SMTP_RELAYS.get(name, {}).get("host"):
                missing = [f"EMAIL{name[4:]}_HOST"]
            if missing:
                raise ImproperlyConfigured(
                    f"Provider {name!r} for channel {channel!r} needs {', '.join(missing)}")
        if channel == "email" and any(name.startswith("smtp") for name in names):
            from .email import settings_header_error

            problem = settings_header_error({setting: getattr(settings, setting) for setting in (
                "DEFAULT_FROM_EMAIL", "NOTIFIER_PUBLIC_URL", "NOTIFIER_UNSUBSCRIBE_MAILTO")})
            if problem:
                raise ImproperlyConfigured(problem)
        if "console" in names and not settings.DEBUG and channel not in settings.NOTIFIER_PROVIDERS_EXPLICIT:
            raise ImproperlyConfigured(
                f"The console provider is the default for {channel!r} but DEBUG is off; set "
                f"NOTIFIER_{channel.upper()}_PROVIDERS explicitly (e.g. to 'console') or configure a real provider."
            )
