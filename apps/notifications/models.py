from django.core.validators import MinValueValidator
from django.db import models

from apps.apikeys.models import default_project_id
from notifier.ids import uuid7


class Channel(models.TextChoices):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    IN_APP = "in_app"
    WEBHOOK = "webhook"  # outbound webhook events (apps.webhooks); not postable through the API


# Channels clients may post to (POST /api/v1/notifications/{channel}/).
API_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.IN_APP)


class Priority(models.TextChoices):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Status(models.TextChoices):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL_STATUSES = frozenset({Status.FAILED, Status.SUPPRESSED, Status.CANCELLED, Status.EXPIRED, Status.DELIVERED})


class CapAction(models.TextChoices):
    SUPPRESS = "suppress"
    HOLD = "hold"


class Category(models.Model):
    """The kind of a notification: default priority, opt-out and quiet-hours policy."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    default_priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    allow_opt_out = models.BooleanField(default=True, help_text="Recipients may opt out of this category.")
    quiet_hours_apply = models.BooleanField(default=False, help_text="Held during a recipient's quiet hours.")
    # Frequency cap per recipient across channels (apps/notifications/caps.py), e.g. 3 per 86400 s.
    cap_count = models.PositiveIntegerField(
        default=0, help_text="At most this many notifications of this category per recipient per period. 0: no cap.",
    )
    cap_period_seconds = models.PositiveIntegerField(
        default=86400, validators=[MinValueValidator(1)], help_text="The cap's period, in seconds.",
    )
    cap_action = models.CharField(
        max_length=8, choices=CapAction.choices, default=CapAction.SUPPRESS,
        help_text="Over the cap: suppress (status suppressed, rate_limited) or hold until the cap allows it.",
    )

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # No index of its own: notif_recipient_idx (recipient, id) serves lookups by recipient, and every
    # index is written again when a claim or a result moves the row.
    recipient = models.ForeignKey(
        "recipients.Recipient", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications",
        db_index=False,
    )
    to = models.CharField(max_length=320, blank=True, help_text="Direct address (email or phone) when no recipient.")
    category = models.CharField(max_length=64, default="transactional")
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    template = models.CharField(max_length=100, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    content = models.JSONField(default=dict, help_text="Rendered subject/body/html/title/data.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    attempts_at_replay = models.PositiveIntegerField(default=0, help_text="attempts when last replayed.")
    # Not a PositiveSmallIntegerField: its CHECK constraint would make adding the column scan the table.
    # The database default lets processes still running the previous code insert rows during a deploy.
    claim_timeouts = models.SmallIntegerField(
        default=0, db_default=0,
        help_text="Times the sweep took it back from a worker that never finished (died or hung).",
    )
    last_error = models.TextField(blank=True)
    provider = models.CharField(max_length=32, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the dispatcher should (re)queue it: schedule or retry time.",
    )
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When its message was last published.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    group_key = models.CharField(max_length=255, blank=True)
    # No foreign-key check in PostgreSQL: it ran once per inserted row (a lookup and a share lock
    # on the key's row, taken by every concurrent batch of that key), about 6 us of the database's
    # CPU per notification on the batch path. Deleting a key through Django still sets its
    # notifications' api_key to NULL (Django carries out on_delete itself), through the index.
    api_key = models.ForeignKey("apikeys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                db_constraint=False)
    # The owner: only keys of this project see or change the notification (docs/security.md). Written by
    # the insert with the rest of the row; no foreign-key check (its cost per row, as for api_key) and no
    # index of its own: reads find rows by id, recipient, group or status and check the project there.
    # Projects are never deleted (the admin does not offer it).
    project = models.ForeignKey("apikeys.Project", on_delete=models.DO_NOTHING, related_name="+",
                                default=default_project_id, db_constraint=False, db_index=False)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["next_attempt_at"], name="notif_due_idx",
                         condition=models.Q(next_attempt_at__isnull=False)),
            models.Index(fields=["status", "channel"], name="notif_status_idx"),
            # Only rows with a recipient: lookups are by recipient, and rows sent to a direct address
            # (`to`) need no entry to write on insert and on every status change.
            models.Index(fields=["recipient", "id"], name="notif_recipient_idx",
                         condition=models.Q(recipient__isnull=False)),
            models.Index(fields=["group_key"], name="notif_group_idx", condition=~models.Q(group_key="")),
            # Twilio's status callbacks find their notification by MessageSid (channel sms); the ids of
            # other channels' providers are never looked up, so they are not indexed.
            models.Index(fields=["provider_message_id"], name="notif_provider_msg_idx",
                         condition=models.Q(channel="sms") & ~models.Q(provider_message_id="")),
            # The dispatcher expires pending notifications whose expires_at has passed.
            models.Index(fields=["expires_at"], name="notif_pending_expiry_idx",
                         condition=models.Q(expires_at__isnull=False, status__in=["scheduled", "queued"])),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.id} ({self.status})"


class NotificationEvent(models.Model):
    """One row per status change or delivery attempt: the `events` history."""

    # No index of its own: event_notif_at_idx (notification, at) serves every lookup by notification,
    # and three event rows are written per notification on the hot path. No foreign-key constraint in
    # PostgreSQL either: its check ran once per event row (a lookup and a row lock on the notification,
    # which the next status update then had to step over), about a third of the database's CPU per
    # notification on the batch path (docs/performance.md). Events are written only by this app, next to
    # their notification, and deleting a notification through Django still deletes its events.
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="events", db_index=False,
                                     db_constraint=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    at = models.DateTimeField()
    detail = models.TextField(blank=True)
    provider = models.CharField(max_length=32, blank=True)
    attempt = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["notification", "at"], name="event_notif_at_idx")]


class ResultHookOutbox(models.Model):
    """Result hooks still to run for results already recorded: the transactional outbox
    (``apps/notifications/resulthooks.py``).

    The transaction that records a batch of results adds one row per result hook that has work in it
    (``policy.RESULT_HOOKS``: the in-app inbox, webhook events), holding what the hook needs (ids and
    the results' values, never whole notifications). After the commit the same process runs each hook in
    a transaction of its own that also deletes the row; a hook that fails leaves its row for a retry
    (``next_attempt_at``) and never touches the recorded results. The beat job ``notifier.result_hooks``
    runs the rows left behind. After ``NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS`` failures a row is dead
    (``dead_at``, no ``next_attempt_at``): kept for the admin, which can run it again.
    """

    id = models.BigAutoField(primary_key=True)
    hook = models.CharField(max_length=100, help_text="The result hook (a module in policy.RESULT_HOOKS).")
    data = models.JSONField(help_text="What the hook needs to run: notification ids and their results.")
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0, help_text="Failed runs so far.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the beat job may run it (empty: dead, given up).")
    last_error = models.TextField(blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "result hook outbox row"
        ordering = ["id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="hook_outbox_due_idx",
                         condition=models.Q(next_attempt_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.hook} #{self.id}"


class PendingPublish(models.Model):
    """A group of committed notifications whose delivery message the broker has not confirmed yet.

    Written with the group's rows (same statement or transaction) and deleted once the publish is
    confirmed (``outbox.publish``). An entry older than ``NOTIFIER_PUBLISH_GRACE``
    seconds means its web process died in between: the dispatcher makes the group's rows due
    (``lifecycle.recover_unconfirmed_publishes``). The key is the group's first queued notification id:
    every id of a group comes from one ``uuid7_many`` call, so they share its millisecond, and that
    millisecond's id range finds them.
    """

    id = models.UUIDField(primary_key=True)

    def __str__(self) -> str:
        return str(self.id)
