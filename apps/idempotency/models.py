from django.db import models


class IdempotencyRecord(models.Model):
    """The first request made with an ``Idempotency-Key`` and, once finished, its response.

    The unique constraint on (api_key, key) is what makes concurrent repeats safe:
    exactly one INSERT wins, the others see its row.
    """

    api_key = models.ForeignKey("apikeys.ApiKey", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and canonical JSON body.")
    created_at = models.DateTimeField()
    locked_at = models.DateTimeField(help_text="When the request now owning the key started.")
    completed_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_per_api_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.api_key_id})"
