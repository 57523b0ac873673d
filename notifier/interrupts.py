"""Exceptions that stop a task, which no broad ``except Exception`` on the delivery path may swallow.

Celery's soft time limit raises ``SoftTimeLimitExceeded`` (an ``Exception``) wherever the task
happens to be, often inside a provider's socket read. Swallowed there (classified as one more
transient SMTP error, say) the task ran on until the hard limit killed it and recorded nothing.
Every broad handler on the delivery path lets these through first:

    try:
        ...
    except INTERRUPTS:
        raise
    except Exception:  # noqa: BLE001
        ...
"""
from __future__ import annotations

try:
    from billiard.exceptions import SoftTimeLimitExceeded
except ImportError:  # pragma: no cover - Celery (and billiard) are installed wherever tasks run
    INTERRUPTS: tuple[type[BaseException], ...] = ()
else:
    INTERRUPTS = (SoftTimeLimitExceeded,)
