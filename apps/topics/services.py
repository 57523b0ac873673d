"""Writes for topics, subscriptions and topic preferences.

Subscriptions have no foreign-key constraints in the database (``models.TopicSubscription``), so the
writers lock instead: subscribing holds ``FOR KEY SHARE`` on the topic and on the recipients it
subscribes until it commits, and deleting a topic or erasing a recipient first locks that row
``FOR UPDATE`` (which waits for those subscribes, and makes later ones not find it). No subscription
outlives its topic or recipient.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.recipients.models import Recipient

from .models import Topic, TopicPreference, TopicSubscription

MAX_SUBSCRIBERS_PER_CALL = 10_000
UNKNOWN_SHOWN = 100
TOPIC_FIELDS = ("name", "description")


class TopicGone(Exception):
    """The topic was deleted while the call waited for it."""


@dataclass
class SubscribersResult:
    """What a subscribe or unsubscribe did. ``unknown``: the first ``UNKNOWN_SHOWN`` external ids that
    are no recipient of the project, in the order given; ``unknown_count``: all of them."""

    subscribed: int = 0
    already: int = 0
    removed: int = 0
    unknown: list[str] = field(default_factory=list)
    unknown_count: int = 0


def topic_upsert(*, project_id: int, key: str, data: dict[str, Any]) -> tuple[Topic, bool]:
    """Create the project's topic ``key`` or update the fields given in ``data``. Returns (topic, created)."""
    values = {k: v for k, v in data.items() if k in TOPIC_FIELDS}
    with transaction.atomic():
        topic = Topic.objects.select_for_update().filter(project_id=project_id, key=key).first()
        if topic is None:
            topic, created = Topic.objects.get_or_create(project_id=project_id, key=key, defaults=values)
            if created:
                return topic, True
        for name, value in values.items():
            setattr(topic, name, value)
        topic.save()
    return topic, False


def topic_delete(*, topic: Topic) -> int:
    """Delete the topic with its subscriptions and the preferences set for it. Returns how many
    subscriptions were deleted (about 1 s per million)."""
    with transaction.atomic():
        if Topic.objects.select_for_update().filter(pk=topic.pk).first() is None:
            return 0
        subscriptions, _ = TopicSubscription.objects.filter(topic_id=topic.pk).delete()
        topic.delete()  # and its TopicPreference rows
    return subscriptions


def _key_share(cursor, table: str, where: str, params: Sequence, columns: str = "id") -> list[tuple]:
    cursor.execute(f"SELECT {columns} FROM {table} WHERE {where} FOR KEY SHARE", params)
    return cursor.fetchall()


def _resolve(cursor, *, project_id: int, external_ids: list[str], lock: bool) -> dict[str, int]:
    """``{external id: recipient id}`` of the project's recipients among ``external_ids``: one query on the
    unique index (project_id, external_id)."""
    table = Recipient._meta.db_table
    where = "project_id = %s AND external_id = ANY(%s)"
    if lock:
        rows = _key_share(cursor, table, where, [project_id, external_ids], columns="external_id, id")
    else:
        cursor.execute(f"SELECT external_id, id FROM {table} WHERE {where}", [project_id, external_ids])
        rows = cursor.fetchall()
    return dict(rows)


def _unknown(result: SubscribersResult, wanted: list[str], found: dict[str, int]) -> None:
    missing = [external_id for external_id in wanted if external_id not in found]
    result.unknown, result.unknown_count = missing[:UNKNOWN_SHOWN], len(missing)


def topic_subscribe(*, topic: Topic, external_ids: Sequence[str]) -> SubscribersResult:
    """Subscribe the topic's project's recipients named by ``external_ids`` (repeats are fine); external ids
    that are no recipient of the project are reported, not created.

    One query resolves the ids, one ``INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING`` adds the new
    subscriptions. Raises ``TopicGone`` when the topic was deleted meanwhile.
    """
    wanted = list(dict.fromkeys(external_ids))
    result = SubscribersResult()
    with transaction.atomic(), connection.cursor() as cursor:
        if not _key_share(cursor, Topic._meta.db_table, "id = %s", [topic.pk]):
            raise TopicGone(topic.key)
        found = _resolve(cursor, project_id=topic.project_id, external_ids=wanted, lock=True)
        if found:
            cursor.execute(
                f"INSERT INTO {TopicSubscription._meta.db_table} (topic_id, recipient_id, created_at) "
                "SELECT %s, unnest(%s::bigint[]), %s ON CONFLICT DO NOTHING",
                [topic.pk, list(found.values()), timezone.now()],
            )
            result.subscribed = cursor.rowcount
        result.already = len(found) - result.subscribed
    _unknown(result, wanted, found)
    return result


def topic_unsubscribe(*, topic: Topic, external_ids: Sequence[str]) -> SubscribersResult:
    """Unsubscribe the project's recipients named by ``external_ids``: one query resolves them, one
    ``DELETE`` removes their subscriptions. Unknown external ids are reported."""
    wanted = list(dict.fromkeys(external_ids))
    result = SubscribersResult()
    with transaction.atomic(), connection.cursor() as cursor:
        found = _resolve(cursor, project_id=topic.project_id, external_ids=wanted, lock=False)
        if found:
            cursor.execute(
                f"DELETE FROM {TopicSubscription._meta.db_table} "
                "WHERE topic_id = %s AND recipient_id = ANY(%s::bigint[])",
                [topic.pk, list(found.values())],
            )
            result.removed = cursor.rowcount
    _unknown(result, wanted, found)
    return result


def topic_preferences_merge(*, recipient: Recipient, topics: dict[str, dict[str, bool | None] | None]) -> None:
    """Merge the ``topics`` part of a preferences document: ``{key: {channel: true|false|null}}``, or
    ``{key: null}`` to remove every setting for that topic. Keys are the recipient's project's topics;
    one deleted meanwhile is skipped. Call it inside the transaction that locks the recipient."""
    if not topics:
        return
    with connection.cursor() as cursor:
        rows = _key_share(cursor, Topic._meta.db_table, "project_id = %s AND key = ANY(%s)",
                          [recipient.project_id, list(topics)], columns="key, id")
    topic_ids = dict(rows)
    remove = Q(pk__in=[])
    create: list[TopicPreference] = []
    for key, per_channel in topics.items():
        topic_id = topic_ids.get(key)
        if topic_id is None:
            continue
        if per_channel is None:
            remove |= Q(topic_id=topic_id)
            continue
        for channel, enabled in per_channel.items():
            remove |= Q(topic_id=topic_id, channel=channel)
            if enabled is not None:
                create.append(TopicPreference(topic_id=topic_id, recipient=recipient, channel=channel,
                                              enabled=enabled))
    TopicPreference.objects.filter(remove, recipient=recipient).delete()
    TopicPreference.objects.bulk_create(create)
