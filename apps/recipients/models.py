from django.db import models

from apps.apikeys.models import default_project_id
from apps.notifications.models import API_CHANNELS
from .fields import EncryptedCharField


class Recipient(models.Model):
    """Someone notifications are sent to, known by the client's own id (unique within its project)."""

    # No index of its own: recipient_project_external_id (project, external_id) serves every lookup.
    project = models.ForeignKey("apikeys.Project", on_delete=models.PROTECT, related_name="+",
                                default=default_project_id, db_index=False)
    external_id = models.CharField(max_length=255)
    # Encrypted at rest when NOTIFIER_FIELD_ENCRYPTION_KEY is set (apps/recipients/fields.py).
    email = EncryptedCharField(max_length=254, blank=True)
    phone = EncryptedCharField(max_length=16, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    locale = models.CharField(max_length=35, blank=True)
    name = models.CharField(max_length=255, blank=True)
    quiet_hours_start = models.TimeField(null=True, blank=True,
                                         help_text="Quiet hours start, in the recipient's time zone.")
    quiet_hours_end = models.TimeField(null=True, blank=True,
                                       help_text="Quiet hours end (may be earlier than the start: crosses midnight).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="recipient_project_external_id"),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def quiet_hours(self):
        if self.quiet_hours_start is None or self.quiet_hours_end is None:
            return None
        if self.quiet_hours_start == self.quiet_hours_end:
            return None
        return self.quiet_hours_start, self.quiet_hours_end


class Device(models.Model):
    class Platform(models.TextChoices):
        ANDROID = "android"
        IOS = "ios"
        WEB = "web"

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="devices")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    token = models.TextField(help_text="FCM/APNs registration token, or the Push API subscription JSON for web.")
    active = models.BooleanField(default=True)
    deactivated_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["recipient", "token"], name="device_unique_token")]

    def __str__(self) -> str:
        return f"{self.platform} device of {self.recipient_id}"


class Preference(models.Model):
    """A recipient's choice for a channel, either for every category (no category) or for one category.

    The most specific preference wins: (category, channel) over (channel).
    Categories that do not allow opting out ignore both.
    """

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="preferences")
    channel = models.CharField(max_length=16, choices=[(c.value, c.label) for c in API_CHANNELS])
    category = models.ForeignKey("notifications.Category", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="+", help_text="Empty: every category on this channel.")
    enabled = models.BooleanField(default=True, help_text="Off: the recipient opted out.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "channel"], condition=models.Q(category__isnull=True),
                                    name="preference_unique_channel"),
            models.UniqueConstraint(fields=["recipient", "category", "channel"],
                                    condition=models.Q(category__isnull=False),
                                    name="preference_unique_category_channel"),
        ]

    def __str__(self) -> str:
        scope = self.category.slug if self.category_id else "all categories"
        return f"{self.channel} for {scope}: {'on' if self.enabled else 'off'}"
