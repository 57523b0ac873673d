from django.db import models


class InboxState(models.Model):
    """A recipient's inbox entry for one in-app notification.

    The notification row holds the content; this row exists once the
    notification was delivered to the inbox (status ``sent``) and holds what
    the recipient did with it.
    """

    # No foreign-key constraint in PostgreSQL: notifications are partitioned by time and whole partitions
    # are dropped (apps/notifications/partitions.py), which first deletes the inbox rows of the partition's
    # id range. Deleting a notification through Django still deletes its inbox row.
    notification = models.OneToOneField(
        "notifications.Notification", primary_key=True, on_delete=models.CASCADE, related_name="inbox_state",
        db_constraint=False,
    )
    recipient = models.ForeignKey("recipients.Recipient", on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "inbox item"
        indexes = [
            # The inbox page: newest first per recipient (ids are time-ordered UUIDs).
            models.Index(fields=["recipient", "-notification"], name="inbox_recipient_idx"),
            # The unread count.
            models.Index(fields=["recipient"], name="inbox_unread_idx",
                         condition=models.Q(read_at__isnull=True, archived_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"inbox item {self.notification_id}"
