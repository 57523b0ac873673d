from django.db import models

from apps.apikeys.models import default_project_id
from notifier.ids import uuid7

EVENTS = (
    "notification.sent",
    "notification.delivered",
    "notification.failed",
    "notification.expired",
    "notification.suppressed",
)


class WebhookEndpoint(models.Model):
    """A client URL that receives signed events about notifications."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=255, blank=True)
    events = models.JSONField(default=list, help_text="Event types sent to this endpoint.")
    secret = models.CharField(max_length=100, help_text="whsec_<base64>: signs every delivery; shown once.")
    active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    api_key = models.ForeignKey("apikeys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The owner: it receives events of this project's notifications only, and only keys of this project
    # see or change it.
    project = models.ForeignKey("apikeys.Project", on_delete=models.PROTECT, related_name="+",
                                default=default_project_id)
    channels = models.JSONField(
        default=list, blank=True,
        help_text="Events of notifications of these channels only (the registering key's allowed channels). "
                  "Empty: every channel.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.url
