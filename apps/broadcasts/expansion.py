"""One page of a broadcast's subscribers made into notifications (called by ``services.expand_page`` in its
transaction).

Most subscribers of a topic have nothing the acceptance policy would act on: no opt-out, no quiet hours, no
suppressed address, and the broadcast's category has no frequency cap. For those the policy's verdict is
known to be "queued as is" without running it, so they need no Python object at all: ONE query classifies
the page in PostgreSQL (``_CLASSIFY``: the keyset page, less those who muted the topic on the channel, each
subscriber ``plain``, ``special`` or ``skip``, aggregated into a few rows of id arrays), and ONE statement per
content (``intake.create.notifications_create_for_recipients``) inserts the plain ones and their events
from that array. The ``special`` ones (any disabled preference, quiet hours set, an address on the
suppression list, an address that is not plain printable ASCII, e.g. encrypted) go through the batch
path as before (``Recipient`` rows, one spec each, ``notifications_create`` and its checks), so every
verdict they get is the policy's own. Where the shortcut cannot be vouched for (a channel other than email
or SMS, a capped category, acceptance checks other than the default ones, encryption at rest) the whole
page goes that way. ``skip``: no address for the channel (counted in ``skipped``).

Measured on a million subscribers: 142 ms of the expander's CPU per 5,000 before, docs/performance.md.
"""
from __future__ import annotations

from django.db import connection
from rest_framework import serializers

from apps.notifications import policy
from apps.notifications.categories import category_get
from apps.notifications.intake.create import KeyRef, notifications_create, notifications_create_for_recipients
from apps.notifications.models import Channel
from apps.notifications.specs import NotificationSpec
from apps.providers.models import Suppression
from apps.recipients.fields import PREFIX as ENCRYPTED_PREFIX
from apps.recipients.fields import field_cipher
from apps.recipients.models import Preference, Recipient
from apps.topics.models import TopicPreference, TopicSubscription

from .models import Broadcast

# The recipient column that holds each channel's address, and its canonical form (notifier.addresses):
# for a plain printable ASCII address (the only ones classified ``plain``) str.strip() changes nothing
# and PostgreSQL's lower() is str.lower().
_ADDRESS = {Channel.EMAIL: ("email", "lower(r.email)"), Channel.SMS: ("phone", "r.phone")}


def _classify_sql(column: str, canonical: str) -> str:
    """The page, classified: rows ``(kind, locale, count, ids as a bigint array's text)``, and a last row
    ``('page', '', subscribers on the page, the last one's id)``."""
    subscriptions, mutes = TopicSubscription._meta.db_table, TopicPreference._meta.db_table
    recipients, preferences = Recipient._meta.db_table, Preference._meta.db_table
    return (
        f"WITH page AS MATERIALIZED (SELECT recipient_id FROM {subscriptions} WHERE topic_id = %(topic)s "
        f"    AND recipient_id > %(after)s ORDER BY recipient_id LIMIT %(limit)s), "
        f"live AS (SELECT r.id, CASE WHEN %(by_locale)s THEN r.locale ELSE '' END AS locale, "
        f"    CASE WHEN r.{column} IS NULL OR r.{column} = '' THEN 'skip' "
        f"         WHEN left(r.{column}, {len(ENCRYPTED_PREFIX)}) = %(encrypted)s OR r.{column} ~ '[^\\x21-\\x7e]' "
        f"           OR r.quiet_hours_start IS NOT NULL OR r.quiet_hours_end IS NOT NULL "
        f"           OR EXISTS (SELECT 1 FROM {preferences} p WHERE p.recipient_id = r.id AND NOT p.enabled) "
        f"           OR EXISTS (SELECT 1 FROM {Suppression._meta.db_table} s WHERE s.address = {canonical}) "
        f"         THEN 'special' ELSE 'plain' END AS kind "
        f"  FROM page JOIN {recipients} r ON r.id = page.recipient_id "
        f"  WHERE NOT EXISTS (SELECT 1 FROM {mutes} m WHERE m.topic_id = %(topic)s "
        f"    AND m.recipient_id = page.recipient_id AND m.channel = %(channel)s AND NOT m.enabled)) "
        f"SELECT kind, locale, count(*), array_agg(id ORDER BY id)::text FROM live GROUP BY kind, locale "
        f"UNION ALL SELECT 'page', '', count(*), max(recipient_id)::text FROM page"
    )


def shortcut_applies(broadcast: Broadcast) -> bool:
    """Whether the plain subscribers of ``broadcast``'s pages may skip the acceptance checks' Python."""
    if broadcast.channel not in _ADDRESS or not policy.acceptance_is_default() or field_cipher() is not None:
        return False
    category = category_get(broadcast.category)
    return category is None or category.cap_count < 1 or category.cap_period_seconds < 1


def create_page(broadcast: Broadcast, *, limit: int, renders: dict) -> tuple[int | None, int, int]:
    """Create the notifications of the broadcast's next ``limit`` subscribers after its cursor (in the
    caller's transaction). Returns (the cursor for the next page or None at the end, created, skipped)."""
    if not shortcut_applies(broadcast):
        return _create_page_by_specs(broadcast, limit=limit, renders=renders)
    column, canonical = _ADDRESS[broadcast.channel]
    by_locale = bool(broadcast.template and not broadcast.locale)
    with connection.cursor() as cursor:
        # The planner's estimates of these two statements pass jit_above_cost, and compiling them took 23 ms
        # of a 5,000-subscriber page's 109 ms of PostgreSQL CPU (EXPLAIN ANALYZE): a page runs them once, so
        # there is nothing for the compiled code to win back. For the page's transaction only.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_classify_sql(column, canonical), {
            "topic": broadcast.topic_id, "after": broadcast.cursor, "limit": limit, "by_locale": by_locale,
            "encrypted": ENCRYPTED_PREFIX, "channel": broadcast.channel})
        groups = cursor.fetchall()
    created = skipped = 0
    after = None
    special: list[int] = []
    for kind, locale, count, ids in groups:
        if kind == "page":
            after = int(ids) if count == limit else None
        elif kind == "skip":
            skipped += count
        elif kind == "special":
            special += [int(i) for i in ids.strip("{}").split(",")]
        else:
            created += notifications_create_for_recipients(
                spec=_spec(broadcast, content_for(broadcast, locale, renders), None), recipient_ids=ids,
                count=count, api_key_id=broadcast.api_key_id)
    if special:
        recipients = list(Recipient.objects.filter(pk__in=special).defer("created_at", "updated_at").order_by("pk"))
        specs, none = page_specs(broadcast, recipients, renders)
        skipped += none
        if specs:
            notifications_create(specs=specs, api_key=KeyRef(broadcast.api_key_id), lean=True)
        created += len(specs)
    return after, created, skipped


def _create_page_by_specs(broadcast: Broadcast, *, limit: int, renders: dict) -> tuple[int | None, int, int]:
    """The page through the batch path alone: one ``Recipient`` and one spec per subscriber."""
    from apps.topics.selectors import topic_subscriber_page

    page = topic_subscriber_page(topic_id=broadcast.topic_id, channel=broadcast.channel, after=broadcast.cursor,
                                 limit=limit)
    specs, skipped = page_specs(broadcast, page.recipients, renders)
    if specs:
        notifications_create(specs=specs, api_key=KeyRef(broadcast.api_key_id), lean=True)
    return page.after, len(specs), skipped


def _spec(broadcast: Broadcast, content: dict, recipient) -> NotificationSpec:
    return NotificationSpec(
        channel=broadcast.channel, category=broadcast.category, priority=broadcast.priority, content=content,
        recipient=recipient, template=broadcast.template, locale=broadcast.locale,
        scheduled_for=broadcast.scheduled_for, expires_at=broadcast.expires_at, metadata=broadcast.metadata,
        group_key=broadcast.group_key, project_id=broadcast.project_id, broadcast_id=broadcast.id,
    )


def page_specs(broadcast: Broadcast, recipients: list, renders: dict) -> tuple[list[NotificationSpec], int]:
    """One spec per recipient with an address for the channel; and how many had none."""
    needs = {Channel.EMAIL: "email", Channel.SMS: "phone"}.get(broadcast.channel)
    specs, skipped = [], 0
    for recipient in recipients:
        if needs is not None and not getattr(recipient, needs):
            skipped += 1
            continue
        specs.append(_spec(broadcast, content_for(broadcast, recipient.locale, renders), recipient))
    return specs, skipped


def content_for(broadcast: Broadcast, locale: str, renders: dict) -> dict:
    """The content for a recipient of ``locale``: a template without a locale given is rendered in each
    recipient's (once per locale and page run); else what was validated with the request."""
    if not broadcast.template or broadcast.locale or not locale:
        return broadcast.content
    content = renders.get(locale)
    if content is None:
        from apps.notifications.content import render_template

        try:
            content = render_template(slug=broadcast.template, channel=broadcast.channel,
                                      context=broadcast.template_context, locale=locale)
        except serializers.ValidationError:  # the template changed since: the request's own rendering
            content = broadcast.content
        renders[locale] = content
    return content
