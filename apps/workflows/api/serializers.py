"""Schemas of what the API shows of digests and fallback steps (``workflow`` in the status API)."""
from rest_framework import serializers


class DigestMembershipSerializer(serializers.Serializer):
    key = serializers.CharField()
    state = serializers.ChoiceField(choices=["held", "released", "settled", "empty"],
                                    help_text="held: waiting for the window's end; released: its digest message is "
                                              "on its way; settled: that message reached a final status.")
    release_at = serializers.DateTimeField(help_text="When the window ends.")
    items = serializers.IntegerField(help_text="Notifications added to this digest so far.")
    digest_notification = serializers.UUIDField(allow_null=True, help_text="The digest message, once released.")


class DigestOfSerializer(serializers.Serializer):
    key = serializers.CharField()
    items = serializers.ListField(child=serializers.UUIDField(), help_text="The notifications it carries.")


class FallbackStepStatusSerializer(serializers.Serializer):
    channel = serializers.CharField()
    after_seconds = serializers.IntegerField()
    unless = serializers.CharField()
    state = serializers.ChoiceField(choices=["pending", "sent", "skipped", "cancelled"])
    due_at = serializers.DateTimeField(allow_null=True, help_text="Pending: when it is looked at next.")
    detail = serializers.CharField(help_text="Why it was sent, skipped or cancelled.")
    notification = serializers.UUIDField(allow_null=True, help_text="The notification it sent.")


class WorkflowSerializer(serializers.Serializer):
    """Only the parts that apply are present."""

    digest = DigestMembershipSerializer(required=False, help_text="This notification is (or was) held in a digest.")
    digest_of = DigestOfSerializer(required=False, help_text="This notification is a digest message.")
    fallback = FallbackStepStatusSerializer(many=True, required=False, help_text="This in-app notification's steps.")


class OpenDigestSerializer(serializers.Serializer):
    key = serializers.CharField()
    channel = serializers.CharField()
    recipient = serializers.CharField(allow_null=True)
    to = serializers.CharField()
    opened_at = serializers.DateTimeField()
    release_at = serializers.DateTimeField()
    items = serializers.ListField(child=serializers.UUIDField(), help_text="The held notifications.")

    def to_representation(self, group):
        from notifier.pii import mask_address

        return {
            "key": group.key, "channel": group.channel,
            "recipient": group.recipient.external_id if group.recipient_id and group.recipient else None,
            "to": mask_address(group.channel, group.to) if group.to else "",
            "opened_at": group.opened_at.isoformat().replace("+00:00", "Z"),
            "release_at": group.release_at.isoformat().replace("+00:00", "Z"),
            "items": [str(m.notification_id) for m in group.members.all()],
        }
