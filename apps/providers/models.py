from django.db import models


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", "hard bounce"
    INVALID_NUMBER = "invalid_number", "invalid phone number"
    UNREGISTERED_DEVICE = "unregistered_device", "unregistered device"
    CARRIER_OPT_OUT = "carrier_opt_out", "opted out at the carrier (STOP)"
    UNSUBSCRIBED = "unsubscribed", "unsubscribed"
    MANUAL = "manual", "added by an operator"


# The recipient's own choice, not a dead address: an operator's replay does not override it
# (`manage.py replay --unsuppress` leaves these; deleting one in the admin still can).
OPT_OUT_REASONS = frozenset({SuppressionReason.UNSUBSCRIBED, SuppressionReason.CARRIER_OPT_OUT})


class Suppression(models.Model):
    """An address no notification is sent to, whatever the channel that found it dead.

    ``address`` is canonical (``notifier.addresses.canonical_address``): email
    lower-cased, a web push subscription by its endpoint. ``category`` blank
    means every category; ``unsubscribed`` never stops a category that cannot
    be opted out of (one-time passwords, security alerts).
    """

    address = models.TextField()
    channel = models.CharField(max_length=16)
    category = models.CharField(max_length=64, blank=True, help_text="Blank: every category.")
    reason = models.CharField(max_length=32, choices=SuppressionReason.choices)
    detail = models.TextField(blank=True)
    notification_id = models.UUIDField(null=True, blank=True, help_text="The notification that found it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["address", "category"], name="suppression_unique_address")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reason}: {self.channel} {self.category or '*'}"


class CircuitBreakerState(models.Model):
    """No table: the admin's window onto the breakers kept in Redis (``notifier.circuit``)."""

    class Meta:
        managed = False
        verbose_name = "circuit breaker"
        verbose_name_plural = "circuit breakers"
        default_permissions = ("view",)
