from django.db import models

SCOPES = (
    "notifications:write",
    "notifications:read",
    "recipients:write",
    "recipients:read",
    "admin",
)
DEFAULT_PROJECT = "default"


class Project(models.Model):
    """The owner of notifications, recipients, webhook endpoints and recurring sends.

    Every API key belongs to one project and sees and changes only its project's objects
    (docs/security.md, "Ownership"). Rows made without a key (the admin, management commands)
    belong to the ``default`` project.
    """

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


def default_project_id() -> int:
    """The id of the ``default`` project, made if missing (a flushed test database): the owner of
    rows made without an API key, and the default of every ``project`` field.

    Reads only the primary key, so the migrations that add ``project`` columns can call it."""
    pk = Project.objects.filter(slug=DEFAULT_PROJECT).values_list("pk", flat=True).first()
    if pk is None:
        pk = Project.objects.get_or_create(slug=DEFAULT_PROJECT, defaults={"name": "Default"})[0].pk
    return pk


class ApiKey(models.Model):
    """A client's credential. Only a SHA-256 hash of the secret is stored."""

    name = models.CharField(max_length=100)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="api_keys",
                                default=default_project_id,
                                help_text="The key sees and changes only this project's objects.")
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
