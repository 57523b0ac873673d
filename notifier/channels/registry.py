"""Pick provider instances for a channel from settings, in failover order."""
from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import Provider

KNOWN = {
    "email": {"smtp", "console", "null"},
    "sms": {"console", "null"},
    "push": {"console", "null"},
    "in_app": {"inbox"},
    "webhook": {"http", "null"},
}


def build_provider(channel: str, name: str) -> Provider:
    if name not in KNOWN.get(channel, set()):
        raise ImproperlyConfigured(f"Unknown provider {name!r} for channel {channel!r}")
    if name == "console":
        from .console import ConsoleProvider
        return ConsoleProvider(channel)
    if name == "null":
        from .console import NullProvider
        return NullProvider(channel)
    if name == "inbox":
        from .console import InboxProvider
        return InboxProvider(channel)
    if name == "smtp":
        from .email import SmtpEmailProvider
        return SmtpEmailProvider(
            host=settings.EMAIL_HOST, port=settings.EMAIL_PORT, username=settings.EMAIL_HOST_USER,
            password=settings.EMAIL_HOST_PASSWORD, use_tls=settings.EMAIL_USE_TLS,
            use_ssl=settings.EMAIL_USE_SSL, from_email=settings.DEFAULT_FROM_EMAIL,
            timeout=settings.EMAIL_TIMEOUT or 10,
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


def provider_names(channel: str) -> list[str]:
    return list(settings.NOTIFIER_PROVIDERS.get(channel, []))


@lru_cache(maxsize=None)
def providers_for(channel: str) -> tuple[Provider, ...]:
    """Providers for ``channel`` in failover order (cached per process)."""
    names = provider_names(channel)
    if not names:
        raise ImproperlyConfigured(f"No provider configured for channel {channel!r}")
    return tuple(build_provider(channel, name) for name in names)


def check_configuration() -> None:
    """Refuse ``console`` outside DEBUG unless it was chosen explicitly."""
    for channel, names in settings.NOTIFIER_PROVIDERS.items():
        for name in names:
            if name not in KNOWN.get(channel, set()):
                raise ImproperlyConfigured(f"Unknown provider {name!r} for channel {channel!r}")
        if "console" in names and not settings.DEBUG and channel not in settings.NOTIFIER_PROVIDERS_EXPLICIT:
            raise ImproperlyConfigured(
                f"The console provider is the default for {channel!r} but DEBUG is off; set "
                f"NOTIFIER_{channel.upper()}_PROVIDERS explicitly (e.g. to 'console') or configure a real provider."
            )
