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


def init_sentry(*, dsn: str | None, release: str | None, environment: str, traces_sample_rate: float = 0.0,
                enable_logs: bool = False) -> bool:
    """Initialise sentry-sdk for Django and Celery; returns whether it was enabled.

    Personal data and credentials are never sent: ``send_default_pii`` is off
    and every payload passes through ``notifier.pii.SENTRY_SCRUBBING`` before
    it leaves the process: errors (``before_send``), transactions and their
    spans (``before_send_transaction``), breadcrumbs (``before_breadcrumb``),
    logs (``before_send_log``, when ``enable_logs``) and metrics; email
    addresses and phone numbers masked, API keys, bearer and recipient tokens,
    webhook secrets, device tokens and secrets in query strings filtered.
    """
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    from .pii import SENTRY_SCRUBBING

    sentry_sdk.init(
        dsn=dsn,
        release=release,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        enable_logs=enable_logs,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(),
        ],
        **SENTRY_SCRUBBING,
    )
    return True
