from django.db import models

SCOPES = (
    "notifications:write",
    "notifications:read",
    "recipients:write",
    "recipients:read",
    "admin",
)


class ApiKey(models.Model):
    """A client's credential. Only a SHA-256 hash of the secret is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, shown in lists.")
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list, blank=True, help_text="Empty means every scope.")
    allowed_channels = models.JSONField(default=list, blank=True, help_text="Empty means every channel.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return not self.scopes or scope in self.scopes or "admin" in self.scopes

    def allows_channel(self, channel: str) -> bool:
        return not self.allowed_channels or channel in self.allowed_channels
