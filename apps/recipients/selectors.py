"""Reads for recipients, devices and preferences."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from django.db import connection
from django.db.models import Q

from apps.notifications.models import API_CHANNELS, Category
from notifier.pgarray import plain_array

from .fields import decrypt_value
from .models import Device, Preference, Recipient


def recipient_get(external_id: str, *, project_id: int | None) -> Recipient | None:
    """The recipient ``external_id`` of the project (None: the ``default`` project)."""
    if project_id is None:
        from apps.apikeys.models import default_project_id

        project_id = default_project_id()
    return Recipient.objects.filter(project_id=project_id, external_id=external_id).first()


def recipients_by_project(wanted: dict[int, set[str]]) -> dict[int, dict[str, Recipient | None]]:
    """``{project id: {external id: recipient or None}}`` for every external id wanted of every project,
    in one query (the unique index on (project, external_id) serves it)."""
    found: dict[int, dict[str, Recipient | None]] = {p: dict.fromkeys(ids) for p, ids in wanted.items() if ids}
    if not found:
        return found
    condition = Q()
    for project_id, ids in found.items():
        condition |= Q(project_id=project_id, external_id__in=list(ids))
    for recipient in Recipient.objects.filter(condition):
        found[recipient.project_id][recipient.external_id] = recipient
    return found


# What sending reads of a recipient: every column but the two timestamps (deferred: reading one is a query).
_SENDING_COLUMNS = tuple(f.column for f in Recipient._meta.concrete_fields if f.attname not in ("created_at", "updated_at"))
_BY_ID_SQL = f"SELECT {', '.join(_SENDING_COLUMNS)} FROM {Recipient._meta.db_table} WHERE id = ANY(%s::bigint[])"


def recipients_by_id(ids: Iterable[int]) -> dict[int, Recipient]:
    """``{id: recipient}`` of those of ``ids`` that exist, in one query (a delivery chunk's): one array
    parameter, and instances made as ``bulk.instances_from_rows`` makes them (no ``__init__`` each), the
    encrypted fields decrypted, ``created_at`` and ``updated_at`` deferred. ``in_bulk`` cost about 35 µs a
    recipient (one ORM placeholder per id, ``Model.__init__``, two timestamps parsed in Python)."""
    from apps.notifications.bulk import instances_from_rows

    ids = list(ids)
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_BY_ID_SQL, [plain_array(int(i) for i in ids)])
        rows = cursor.fetchall()
    recipients = instances_from_rows(Recipient, _SENDING_COLUMNS, rows)
    for recipient in recipients:
        recipient.email, recipient.phone = decrypt_value(recipient.email), decrypt_value(recipient.phone)
    return {recipient.pk: recipient for recipient in recipients}


def device_get(recipient: Recipient, device_id: str) -> Device | None:
    try:
        pk = int(device_id)
    except (TypeError, ValueError):
        return None
    return Device.objects.filter(recipient=recipient, pk=pk).first()


def device_list(recipient: Recipient):
    return Device.objects.filter(recipient=recipient).order_by("id")


def preference_maps(recipient_ids: Iterable[int]) -> dict[int, dict[tuple[str | None, str], bool]]:
    """``{recipient id: {(category slug or None, channel): enabled}}`` for many recipients, in one query."""
    ids = list(recipient_ids)
    maps: dict[int, dict[tuple[str | None, str], bool]] = defaultdict(dict)
    if not ids:
        return maps
    # One array parameter (its text, parsed by PostgreSQL): `recipient_id__in` made one placeholder per id,
    # each prepared by the ORM and adapted by psycopg in Python, about 50 µs per id (profiled on a broadcast
    # page of 5,000, where it was the largest cost), and the delivery of every chunk to recipients runs it.
    with connection.cursor() as cursor:
        cursor.execute(_PREFERENCES_SQL, [plain_array(int(i) for i in ids)])
        rows = cursor.fetchall()
    for recipient_id, category, channel, enabled in rows:
        maps[recipient_id][(category, channel)] = enabled
    return maps


_PREFERENCES_SQL = (f"SELECT p.recipient_id, c.slug, p.channel, p.enabled FROM {Preference._meta.db_table} p "
                    f"LEFT JOIN {Category._meta.db_table} c ON c.id = p.category_id "
                    f"WHERE p.recipient_id = ANY(%s::bigint[])")


def preferences_document(recipient: Recipient) -> dict:
    """The preferences as the API shows them: every channel (on unless turned off), category overrides,
    quiet hours, topic settings."""
    from apps.topics.selectors import topic_preferences_document
    channels = {c.value: True for c in API_CHANNELS}
    categories: dict[str, dict[str, bool]] = {}
    for (category, channel), enabled in sorted(preference_maps([recipient.pk]).get(recipient.pk, {}).items(),
                                               key=lambda item: (item[0][0] or "", item[0][1])):
        if category is None:
            channels[channel] = enabled
        else:
            categories.setdefault(category, {})[channel] = enabled
    quiet = None
    if recipient.quiet_hours_start is not None and recipient.quiet_hours_end is not None:
        quiet = {"start": recipient.quiet_hours_start.strftime("%H:%M"),
                 "end": recipient.quiet_hours_end.strftime("%H:%M")}
    return {"channels": channels, "categories": categories, "quiet_hours": quiet,
            "topics": topic_preferences_document(recipient_id=recipient.pk)}
