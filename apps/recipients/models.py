from django.db import models

from .fields import EncryptedCharField


class Recipient(models.Model):
    """Someone notifications are sent to, known by the client's own id."""

    external_id = models.CharField(max_length=255, unique=True)
    # Encrypted at rest when NOTIFIER_FIELD_ENCRYPTION_KEY is set (apps/recipients/fields.py).
    email = EncryptedCharField(max_length=254, blank=True)
    phone = EncryptedCharField(max_length=16, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    locale = models.CharField(max_length=35, blank=True)
    name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.external_id


class Device(models.Model):
    class Platform(models.TextChoices):
        ANDROID = "android"
        IOS = "ios"
        WEB = "web"

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="devices")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    token = models.TextField()
    active = models.BooleanField(default=True)
    deactivated_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["recipient", "token"], name="device_unique_token")]

    def __str__(self) -> str:
        return f"{self.platform} device of {self.recipient_id}"
