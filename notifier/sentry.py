"""Sentry error reporting for the API and the workers (only when SENTRY_DSN is set)."""
from __future__ import annotations

import subprocess
from pathlib import Path


def git_sha(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def init_sentry(*, dsn: str | None, release: str | None, environment: str, traces_sample_rate: float = 0.0) -> bool:
    """Initialise sentry-sdk for Django and Celery; returns whether it was enabled.

    Personal data is never sent: ``send_default_pii`` is off and every event
    passes through ``notifier.pii.scrub_event`` (email addresses and phone
    numbers masked) before it leaves the process.
    """
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    from .pii import scrub_event

    sentry_sdk.init(
        dsn=dsn,
        release=release,
        environment=environment,
        send_default_pii=False,
        before_send=scrub_event,
        traces_sample_rate=traces_sample_rate,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(),
        ],
    )
    return True
