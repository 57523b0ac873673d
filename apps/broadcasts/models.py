"""Broadcasts: one call that sends a notification to every subscriber of a topic (docs/broadcasts.md)."""
from django.db import models

from apps.notifications.models import Channel, Priority
from notifier.ids import uuid7


class BroadcastStatus(models.TextChoices):
    SCHEDULED = "scheduled"  # waiting for scheduled_for; nothing created yet
    EXPANDING = "expanding"  # its notifications are being created, a page of subscribers at a time
    EXPANDED = "expanded"  # every subscriber was reached; its notifications go on as any other
    CANCELLED = "cancelled"  # stopped: no more are created, and those not yet sending were cancelled


class Broadcast(models.Model):
    """The accepted request. The API stores only this row (and answers at once); ``notifier.broadcast_expand``
    then walks the topic's subscribers in pages, each page's notifications created by the batch path in the
    transaction that moves ``cursor`` past it, so a page is created exactly once whatever dies when."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    project = models.ForeignKey("apikeys.Project", on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey("apikeys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                db_constraint=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    topic = models.ForeignKey("topics.Topic", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              help_text="Empty once the topic was deleted (the broadcast then ends).")
    topic_key = models.CharField(max_length=100)
    category = models.CharField(max_length=64)
    priority = models.CharField(max_length=8, choices=Priority.choices)
    template = models.CharField(max_length=100, blank=True)
    locale = models.CharField(max_length=35, blank=True, help_text="Given with the request (else each recipient's).")
    template_context = models.JSONField(default=dict, blank=True)
    content = models.JSONField(default=dict, help_text="Inline content, or the template rendered in `locale`.")
    scheduled_for = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    group_key = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=BroadcastStatus.choices)
    cursor = models.BigIntegerField(default=0, help_text="Subscribers up to this recipient id are done.")
    created = models.PositiveIntegerField(default=0, help_text="Notifications created so far.")
    skipped = models.PositiveIntegerField(
        default=0, help_text="Subscribers left out: no address for the channel (no email or phone).")
    counts = models.JSONField(default=dict, blank=True, help_text="Its notifications per status, as last counted.")
    counts_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When it was expanded or cancelled.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The beat job finds broadcasts to start or resume; finished ones need no entry.
            models.Index(fields=["status", "scheduled_for"], name="broadcast_pending_idx",
                         condition=models.Q(status__in=["scheduled", "expanding"])),
            models.Index(fields=["project", "id"], name="broadcast_project_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.topic_key} ({self.status})"

    @property
    def status_url(self) -> str:
        """Where the API shows it, with its counts."""
        return f"/api/v1/broadcasts/{self.id}/"
