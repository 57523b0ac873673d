"""The batch endpoint's work: every item validated (its own errors, without stopping the others), the
valid ones created in one transaction after the backpressure wait."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.fields import empty

from apps.api.errors import error_lists

from ..models import API_CHANNELS
from ..specs import NotificationSpec
from . import backpressure
from .create import notifications_create
from .items import ItemValidator, item_validator, recipients_for

_CHANNELS = frozenset(c.value for c in API_CHANNELS)


def batch_max() -> int:
    """The most items one batch request may hold."""
    return settings.NOTIFIER_BATCH_MAX


def _item_errors(item: Any, api_key) -> tuple[str | None, dict | None]:
    """The item's channel, or errors about it."""
    if type(item) is not dict:
        return None, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {type(item).__name__}."]}
    channel = item.get("channel", empty)
    if channel is empty:
        return None, {"channel": ["This field is required."]}
    if type(channel) is not str or channel not in _CHANNELS:
        return None, {"channel": [f'"{channel}" is not a valid choice.']}
    if api_key is not None and not api_key.allows_channel(channel):
        return None, {"channel": [f"This API key may not send {channel} notifications."]}
    return channel, None


def notifications_validate_batch(*, items: list, api_key) -> list[NotificationSpec | dict]:
    """For each item in order, its ``NotificationSpec`` or its error dict."""
    if api_key is not None:
        project_id = api_key.project_id
    else:
        from apps.apikeys.models import default_project_id

        project_id = default_project_id()
    context = {"recipients": recipients_for(items, project_id), "project_id": project_id}
    validators: dict[str, ItemValidator] = {}  # this thread's, their context set once per batch
    out: list[NotificationSpec | dict] = []
    for item in items:
        channel, errors = _item_errors(item, api_key)
        if errors is not None:
            out.append(errors)
            continue
        validator = validators.get(channel)
        if validator is None:
            validator = validators[channel] = item_validator(channel, **context)
        try:
            out.append(validator.validate(item))
        except serializers.ValidationError as exc:
            out.append(error_lists(exc.detail))
    return out


def notifications_create_batch(*, items: list, api_key) -> list[dict]:
    """Validate ``items``, create the valid ones in one transaction, and answer one result per item.

    A result is ``{"id", "status"}`` or ``{"errors": {...}}``; invalid items do
    not stop valid ones.
    """
    checked = notifications_validate_batch(items=items, api_key=api_key)
    specs = [c for c in checked if isinstance(c, NotificationSpec)]
    if specs:
        backpressure.wait_for_room({spec.priority for spec in specs})  # backpressure: see backpressure.py
    created = iter(notifications_create(specs=specs, api_key=api_key, lean=True) if specs else [])
    results = []
    for c in checked:
        if isinstance(c, NotificationSpec):
            n = next(created)
            results.append({"id": n.id, "status": n.status})
        else:
            results.append({"errors": c})
    return results
