"""Topics: named lists of a project's recipients that one call can send to (docs/topics.md)."""
from django.core.validators import RegexValidator
from django.db import models

from apps.apikeys.models import default_project_id
from apps.notifications.models import API_CHANNELS

KEY_MAX_LENGTH = 100
# Letters, digits and - _ . : (a topic key goes in URL paths), starting with a letter or digit.
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*\Z"
KEY_MESSAGE = (f"Use at most {KEY_MAX_LENGTH} letters, digits, '-', '_', '.' or ':', starting with a letter or "
               "digit.")
validate_topic_key = RegexValidator(KEY_PATTERN, KEY_MESSAGE)


class Topic(models.Model):
    """A named set of recipients of one project, e.g. ``product-updates`` or ``order:1234``."""

    # No index of its own: topic_project_key (project, key) serves every lookup.
    project = models.ForeignKey("apikeys.Project", on_delete=models.PROTECT, related_name="+",
                                default=default_project_id, db_index=False)
    key = models.CharField(max_length=KEY_MAX_LENGTH, validators=[validate_topic_key],
                           help_text="The client's name for the topic, unique within its project.")
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="topic_project_key")]

    def __str__(self) -> str:
        return self.key


class TopicSubscription(models.Model):
    """A recipient subscribed to a topic.

    The primary key is (topic_id, recipient_id), with no id column: a broadcast streams a topic's
    subscribers in recipient id order by keyset pagination (``WHERE topic_id = %s AND recipient_id > %s
    ORDER BY recipient_id LIMIT n``), an index-only scan of that key. The (recipient_id) index serves
    erasing a recipient. There are no foreign-key constraints in the database: their per-row checks
    tripled the time of a 10,000-row insert; ``topic_subscribe`` and the deletes lock the rows
    instead (docs/topics.md, "Storage").
    """

    pk = models.CompositePrimaryKey("topic", "recipient")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                              db_index=False)
    recipient = models.ForeignKey("recipients.Recipient", on_delete=models.CASCADE, related_name="+",
                                  db_constraint=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.recipient_id} in {self.topic_id}"


class TopicPreference(models.Model):
    """A recipient's choice for one topic on one channel: ``enabled`` off mutes the topic there.

    Only an opt-out acts: a broadcast to the topic skips recipients with a row (topic, recipient,
    channel, enabled=False), anti-joined in SQL (``selectors.topic_subscriber_page``); ``True`` is
    kept so the preferences document shows what was set, and lifts nothing set elsewhere.
    """

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="+", db_index=False)
    recipient = models.ForeignKey("recipients.Recipient", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=[(c.value, c.label) for c in API_CHANNELS])
    enabled = models.BooleanField(default=True, help_text="Off: the recipient muted this topic on this channel.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["topic", "recipient", "channel"], name="topic_preference_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {'on' if self.enabled else 'muted'}"
