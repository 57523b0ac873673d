"""Digests and channel fallback (docs/workflows.md).

A **digest** holds the notifications of one recipient (or address), channel and key for a window and
then sends them as one message (``DigestGroup``, its ``DigestMember`` rows). A **fallback** step sends an
in-app notification again on another channel when it was not read in time (``FallbackStep``). Both wait
in PostgreSQL and are released by the dispatcher (``notifier.dispatch_due``), never by countdown tasks.
"""
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.notifications.models import API_CHANNELS

KEY_MAX_LENGTH = 100
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*\Z"
KEY_MESSAGE = (f"Use at most {KEY_MAX_LENGTH} letters, digits, '-', '_', '.' or ':', starting with a letter or "
               "digit.")
validate_digest_key = RegexValidator(KEY_PATTERN, KEY_MESSAGE)
MAX_WINDOW_SECONDS = 7 * 86400
MAX_FALLBACK_SECONDS = 30 * 86400


class CategoryDigest(models.Model):
    """Every notification of this category is digested (unless its request says ``"digest": null``)."""

    category = models.OneToOneField("notifications.Category", on_delete=models.CASCADE, related_name="digest")
    key = models.CharField(max_length=KEY_MAX_LENGTH, validators=[validate_digest_key],
                           help_text="Notifications of one recipient, channel and key are held together.")
    window_seconds = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_SECONDS)],
        help_text="How long the first notification of a digest waits for more.")
    template = models.SlugField(max_length=100, blank=True,
                                help_text="The digest message's template (context: items, count, key...); "
                                          "empty: a built-in summary.")

    class Meta:
        verbose_name = "category digest"

    def __str__(self) -> str:
        return f"{self.category_id}: {self.key} ({self.window_seconds} s)"

    def as_spec(self) -> dict:
        return {"key": self.key, "window_seconds": self.window_seconds, "template": self.template}


class DigestState(models.TextChoices):
    OPEN = "open"  # collecting notifications until release_at
    RELEASED = "released"  # its digest message is created and on its way; members are `sending`
    SETTLED = "settled"  # the digest message reached a final status, and so did its members
    EMPTY = "empty"  # every member was cancelled or expired before the release: nothing to send


class DigestGroup(models.Model):
    """The held notifications of one project, channel, recipient (or address) and key."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey("apikeys.Project", on_delete=models.DO_NOTHING, related_name="+",
                                db_constraint=False, db_index=False)
    channel = models.CharField(max_length=16, choices=[(c.value, c.label) for c in API_CHANNELS])
    # Who the digest goes to: "r:<recipient id>" or the direct address ("to").
    address = models.CharField(max_length=330)
    recipient = models.ForeignKey("recipients.Recipient", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", db_constraint=False, db_index=False)
    to = models.CharField(max_length=320, blank=True)
    key = models.CharField(max_length=KEY_MAX_LENGTH)
    template = models.CharField(max_length=100, blank=True)
    # The digest message's category, priority and API key: those of the first member.
    category = models.CharField(max_length=64)
    priority = models.CharField(max_length=8)
    api_key_id = models.BigIntegerField(null=True, blank=True)
    window_seconds = models.PositiveIntegerField()
    opened_at = models.DateTimeField()
    release_at = models.DateTimeField()
    items = models.PositiveIntegerField(default=0, help_text="Members added (some may be cancelled since).")
    state = models.CharField(max_length=10, choices=DigestState.choices, default=DigestState.OPEN)
    released_at = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey("notifications.Notification", null=True, blank=True, on_delete=models.DO_NOTHING,
                               related_name="+", db_constraint=False,
                               help_text="The digest message, once released.")

    class Meta:
        constraints = [
            # At most one open group per key: concurrent creates join it (INSERT ... ON CONFLICT).
            models.UniqueConstraint(fields=["project", "channel", "address", "key"], name="digest_open_unique",
                                    condition=models.Q(state="open")),
        ]
        indexes = [
            models.Index(fields=["release_at"], name="digest_due_idx", condition=models.Q(state="open")),
            models.Index(fields=["id"], name="digest_released_idx", condition=models.Q(state="released")),
        ]

    def __str__(self) -> str:
        return f"digest {self.key} #{self.id} ({self.state})"


class DigestMember(models.Model):
    """A notification held in a digest."""

    notification = models.OneToOneField("notifications.Notification", primary_key=True, on_delete=models.CASCADE,
                                        related_name="+", db_constraint=False)
    group = models.ForeignKey(DigestGroup, on_delete=models.CASCADE, related_name="members")

    def __str__(self) -> str:
        return str(self.notification_id)


class FallbackState(models.TextChoices):
    PENDING = "pending"  # waiting for its time
    SENT = "sent"  # its notification was created (see `notification` for how it went)
    SKIPPED = "skipped"  # the in-app notification was read in time (or the step could not apply)
    CANCELLED = "cancelled"  # cancelled, or the in-app notification was


class FallbackStep(models.Model):
    """One step of an in-app notification's fallback: another channel after a while, unless read."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: fallback_source_position (source, position) serves lookups by source.
    source = models.ForeignKey("notifications.Notification", on_delete=models.CASCADE, related_name="+",
                               db_constraint=False, db_index=False, help_text="The in-app notification.")
    position = models.PositiveSmallIntegerField()
    channel = models.CharField(max_length=16, choices=[(c.value, c.label) for c in API_CHANNELS])
    after_seconds = models.PositiveIntegerField()
    unless = models.CharField(max_length=16, default="read")
    project = models.ForeignKey("apikeys.Project", on_delete=models.DO_NOTHING, related_name="+",
                                db_constraint=False, db_index=False)
    api_key_id = models.BigIntegerField(null=True, blank=True)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=FallbackState.choices, default=FallbackState.PENDING)
    detail = models.CharField(max_length=255, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    notification = models.ForeignKey("notifications.Notification", null=True, blank=True,
                                     on_delete=models.DO_NOTHING, related_name="+", db_constraint=False,
                                     help_text="The notification this step sent.")

    class Meta:
        ordering = ["source", "position"]
        constraints = [models.UniqueConstraint(fields=["source", "position"], name="fallback_source_position")]
        indexes = [models.Index(fields=["due_at"], name="fallback_due_idx", condition=models.Q(state="pending"))]

    def __str__(self) -> str:
        return f"fallback {self.position} of {self.source_id}: {self.channel} ({self.state})"
