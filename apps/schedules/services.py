"""Recurring sends: django-celery-beat ``PeriodicTask`` rows that run ``notifier.send_recurring``.

A recurring send is a ``PeriodicTask`` with an interval or a (timezone-aware)
crontab schedule whose kwargs describe what to send. Beat (the
DatabaseScheduler) notices new, changed and deleted rows without a restart and
publishes the task at each run; the task turns the kwargs into notifications
through the normal ``notifications_create`` path.

The kwargs (also what an operator types in the admin, as JSON)::

    {
      "channel": "email",                     # email | sms | push | in_app
      "recipients": ["user-1", "user-2"],     # external ids of known recipients, or
      "to": ["ops@example.com"],              # direct addresses (email, E.164 phone, device token)
      "template": "weekly-digest",            # a template slug + "context" + optional "locale", or
      "subject": "...", "body": "...",        # inline content as for POST /notifications/{channel}/
      "html": "...", "title": "...", "data": {},
      "category": "marketing",                # optional, default transactional
      "priority": "low",                      # optional, default the category's
      "ttl_seconds": 3600,                    # optional, each run's notifications expire after this
      "metadata": {}, "group_key": "digest"   # optional, stored on every notification
    }

Created through the API, it also carries ``api_key_id``: its notifications are
attributed to that key, and revoking the key stops the recurring send.

Its owner (``RecurringSendOwner``: project and channel) is what the API filters on; each run creates
notifications of that project, for that project's recipients. One made in the admin belongs to the
project chosen there (by default the ``default`` project).
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab as celery_crontab
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from rest_framework import serializers

from apps.apikeys.models import default_project_id
from apps.notifications.intake.create import notifications_create
from apps.notifications.intake.validation import NotificationInputSerializer
from apps.notifications.models import API_CHANNELS
from apps.notifications.specs import NotificationSpec

from .models import RecurringSendOwner

logger = logging.getLogger(__name__)

TASK_NAME = "notifier.send_recurring"

# What one run sends (the rest of the kwargs names whom).
SEND_FIELDS = (
    "template", "context", "locale", "subject", "body", "html", "title", "data",
    "category", "priority", "ttl_seconds", "metadata", "group_key",
)
TARGET_FIELDS = ("recipients", "to")
ADDRESS_ERRORS = ("recipient", "to", "device_tokens")
KWARG_FIELDS = ("channel", *TARGET_FIELDS, *SEND_FIELDS, "api_key_id")


class InvalidSchedule(serializers.ValidationError):
    """Bad kwargs or schedule; ``detail`` is ``{field: [messages]}``."""


# --- validation ------------------------------------------------------------------------------------

def recurring_kwargs_validate(kwargs: Any, *, check_targets: bool = True, project_id: int | None = None
                              ) -> dict[str, Any]:
    """Check the kwargs of a recurring send; return them normalised, or raise ``InvalidSchedule``.

    Every target is validated exactly as a POST to ``/notifications/{channel}/``
    would be (addresses, known recipients, content, template), so a mistake is
    reported when the schedule is made, not at 3 a.m. when it runs.
    """
    if not isinstance(kwargs, dict):
        raise InvalidSchedule({"kwargs": ["Must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(kwargs) - set(KWARG_FIELDS))
    for name in unknown:
        errors[name] = [f"Unknown field. Allowed: {', '.join(KWARG_FIELDS)}."]
    channel = kwargs.get("channel")
    if channel not in [c.value for c in API_CHANNELS]:
        errors["channel"] = [f"Must be one of {', '.join(c.value for c in API_CHANNELS)}."]
    given = [name for name in TARGET_FIELDS if kwargs.get(name) not in (None, [], "")]
    if len(given) != 1:
        errors["recipients"] = ["Give either 'recipients' (external ids) or 'to' (addresses), a non-empty list."]
    else:
        targets = kwargs[given[0]]
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
            errors[given[0]] = ["Must be a list of non-empty strings."]
        elif len(targets) > settings.NOTIFIER_RECURRING_MAX_RECIPIENTS:
            errors[given[0]] = [f"At most {settings.NOTIFIER_RECURRING_MAX_RECIPIENTS} per recurring send."]
        elif len(set(targets)) != len(targets):
            errors[given[0]] = ["Names the same target twice."]
    if errors:
        raise InvalidSchedule(errors)

    field = given[0]
    targets = kwargs[field] if isinstance(kwargs[field], list) else [kwargs[field]]
    cleaned = {k: v for k, v in kwargs.items() if k in KWARG_FIELDS}
    cleaned[field] = targets
    if check_targets:
        _, target_errors = recurring_specs(cleaned, targets=targets, project_id=project_id)
        if target_errors:
            raise InvalidSchedule(target_errors)
    return cleaned


def recurring_specs(kwargs: dict[str, Any], *, targets: list[str] | None = None, project_id: int | None = None
                    ) -> tuple[list[NotificationSpec], dict[str, list[str]]]:
    """One ``NotificationSpec`` of ``project_id`` (None: the default project) per valid target, and the
    errors of the others. Recipients are the project's.

    Address errors are reported under ``recipients``/``to`` with the item's
    position; content errors (the same for every target) once under their field.
    """
    from apps.recipients.selectors import recipients_by_project

    if project_id is None:
        project_id = default_project_id()
    field = "recipients" if kwargs.get("recipients") else "to"
    targets = targets if targets is not None else list(kwargs.get(field) or [])
    base = {k: kwargs[k] for k in SEND_FIELDS if k in kwargs}
    context: dict[str, Any] = {"channel": kwargs["channel"], "project_id": project_id}
    if field == "recipients":
        context["recipients"] = recipients_by_project({project_id: set(targets)}).get(project_id, {})
    specs: list[NotificationSpec] = []
    errors: dict[str, list[str]] = {}
    for position, target in enumerate(targets):
        data = {**base, ("recipient" if field == "recipients" else "to"): target}
        serializer = NotificationInputSerializer(data=data, context=context)
        if serializer.is_valid():
            specs.append(serializer.validated_data)
            continue
        for name, messages in serializer.errors.items():
            if name in ADDRESS_ERRORS:
                errors.setdefault(field, []).extend(f"Item {position} ({target}): {m}" for m in messages)
            elif name not in errors:
                errors[name] = [str(m) for m in messages]
    return specs, errors


def _schedule_validate(*, interval_seconds: int | None, cron: str | None, timezone_name: str | None
                       ) -> tuple[IntervalSchedule | None, CrontabSchedule | None]:
    """The (unsaved-or-existing) schedule row for an interval or a 5-field cron expression."""
    if (interval_seconds is None) == (cron is None):
        raise InvalidSchedule({"interval_seconds": ["Give either interval_seconds or cron."]})
    if interval_seconds is not None:
        if timezone_name:
            raise InvalidSchedule({"timezone": ["Only cron schedules take a timezone."]})
        schedule = IntervalSchedule.objects.filter(every=interval_seconds, period=IntervalSchedule.SECONDS).first()
        return schedule or IntervalSchedule(every=interval_seconds, period=IntervalSchedule.SECONDS), None
    parts = cron.split()
    if len(parts) != 5:
        raise InvalidSchedule({"cron": ["Five fields: minute hour day-of-month month day-of-week, "
                                        "e.g. '0 9 * * mon-fri'."]})
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        celery_crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                       day_of_week=day_of_week)
    except (ValueError, TypeError, IndexError) as exc:
        raise InvalidSchedule({"cron": [f"Invalid cron expression: {exc}"]}) from exc
    tz_name = timezone_name or "UTC"
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule({"timezone": [f"Unknown timezone {tz_name!r}."]}) from exc
    spec = dict(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                day_of_week=day_of_week, timezone=tz)
    return None, CrontabSchedule.objects.filter(**spec).first() or CrontabSchedule(**spec)


# --- writes ----------------------------------------------------------------------------------------

def recurring_send_create(*, send: dict[str, Any], interval_seconds: int | None = None, cron: str | None = None,
                          timezone_name: str | None = None, name: str = "", description: str = "",
                          enabled: bool = True, start_at: datetime | None = None, end_at: datetime | None = None,
                          api_key=None) -> PeriodicTask:
    """Validate and store a recurring send of ``api_key``'s project (no key: the default project) as a
    ``PeriodicTask`` and its owner. Raises ``InvalidSchedule``."""
    project_id = api_key.project_id if api_key is not None else default_project_id()
    kwargs = recurring_kwargs_validate({k: v for k, v in send.items() if k != "api_key_id"}, project_id=project_id)
    if api_key is not None:
        kwargs["api_key_id"] = api_key.pk
    interval, crontab = _schedule_validate(interval_seconds=interval_seconds, cron=cron, timezone_name=timezone_name)
    if start_at and end_at and end_at <= start_at:
        raise InvalidSchedule({"end_at": ["Must be after start_at."]})
    name = name or f"recurring {kwargs['channel']} {uuid.uuid4().hex[:12]}"
    queue = settings.NOTIFIER_RECURRING_QUEUE
    try:
        with transaction.atomic():
            if interval is not None and interval.pk is None:
                interval.save()
            if crontab is not None and crontab.pk is None:
                crontab.save()
            periodic_task = PeriodicTask.objects.create(
                name=name, task=TASK_NAME, interval=interval, crontab=crontab, kwargs=json.dumps(kwargs),
                queue=queue, exchange=settings.NOTIFIER_EXCHANGE, routing_key=queue, enabled=enabled,
                start_time=start_at, expires=end_at, description=description,
            )
            RecurringSendOwner.objects.create(periodic_task=periodic_task, project_id=project_id,
                                              channel=kwargs["channel"])
            return periodic_task
    except (IntegrityError, DjangoValidationError) as exc:  # PeriodicTask.save() checks the name first
        raise InvalidSchedule({"name": ["A periodic task with this name already exists."]}) from exc


def recurring_send_delete(*, periodic_task: PeriodicTask) -> None:
    """Delete it; beat notices (``PeriodicTask.delete`` bumps django-celery-beat's change marker)."""
    periodic_task.delete()


def recurring_send_run(*, kwargs: dict[str, Any], periodic_task_name: str = "") -> int:
    """One run of a recurring send: create its notifications. Returns how many were created.

    Targets that became invalid since the schedule was made (a recipient erased,
    a template removed) are logged and skipped; the others are still sent.
    """
    from apps.apikeys.models import ApiKey

    label = periodic_task_name or "recurring send"
    try:
        kwargs = recurring_kwargs_validate(kwargs, check_targets=False)
    except InvalidSchedule as exc:
        logger.error("%s: invalid kwargs, nothing sent: %s", label, exc.detail)
        return 0
    project_id = None
    if periodic_task_name:
        project_id = (RecurringSendOwner.objects.filter(periodic_task__name=periodic_task_name)
                      .values_list("project_id", flat=True).first())
    api_key = None
    if kwargs.get("api_key_id") is not None:
        api_key = ApiKey.objects.filter(pk=kwargs["api_key_id"]).first()
        if api_key is None or not api_key.is_active:
            logger.warning("%s: its API key was revoked or deleted; nothing sent", label)
            return 0
        if not api_key.has_scope("notifications:write") or not api_key.allows_channel(kwargs["channel"]):
            logger.warning("%s: its API key may no longer send %s; nothing sent", label, kwargs["channel"])
            return 0
        if project_id is None:
            project_id = api_key.project_id
        elif api_key.project_id != project_id:
            logger.warning("%s: its API key now belongs to another project; nothing sent", label)
            return 0
    specs, errors = recurring_specs(kwargs, project_id=project_id)
    if errors:
        logger.warning("%s: skipped invalid targets: %s", label, errors)
    if not specs:
        return 0
    return len(notifications_create(specs=specs, api_key=api_key))
