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
    rate_limit = models.FloatField(
        null=True, blank=True,
        help_text="Requests per second. Empty: NOTIFIER_API_RATE. 0: unlimited.",
    )
    rate_burst = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests allowed at once above the rate. Empty: NOTIFIER_API_BURST.",
    )

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

    def throttle_limits(self, *, default_rate: float, default_burst: int) -> tuple[float, int]:
        """(requests per second, burst) for this key; a rate of 0 means unlimited."""
        rate = default_rate if self.rate_limit is None else self.rate_limit
        burst = default_burst if self.rate_burst is None else self.rate_burst
        return float(rate), max(int(burst), 1)
