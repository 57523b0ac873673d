from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.workflows.api.serializers import WorkflowSerializer  # workflows (apps.workflows)

from notifier.pii import mask_address, scrub_text

from ..models import Notification, NotificationEvent


class NotificationAcceptedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ("id", "channel", "status", "priority", "category", "created_at", "scheduled_for")


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationEvent
        fields = ("status", "at", "detail")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["detail"] = scrub_text(data["detail"])  # provider replies often quote the address
        return data


class NotificationDetailSerializer(serializers.ModelSerializer):
    recipient = serializers.SerializerMethodField()
    to = serializers.SerializerMethodField()
    sms = serializers.SerializerMethodField()
    events = EventSerializer(many=True, read_only=True)
    workflow = serializers.SerializerMethodField()  # workflows (apps.workflows): digest and fallback

    class Meta:
        model = Notification
        fields = (
            "id", "channel", "status", "priority", "category", "created_at", "scheduled_for",
            "recipient", "to", "attempts", "last_error", "provider", "provider_message_id", "sent_at",
            "delivered_at", "expires_at", "group_key", "metadata", "sms", "events", "workflow",
        )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("last_error"):
            data["last_error"] = scrub_text(data["last_error"])
        return data

    def get_recipient(self, obj) -> str | None:
        return obj.recipient.external_id if obj.recipient_id and obj.recipient else None

    def get_sms(self, obj) -> dict | None:
        """SMS only: ``{"encoding": "GSM-7"|"UCS-2", "characters", "segments"}`` of the body."""
        return (obj.content or {}).get("sms") if obj.channel == "sms" else None

    @extend_schema_field(WorkflowSerializer(allow_null=True))
    def get_workflow(self, obj) -> dict | None:
        """Workflows (apps.workflows): its digest (held or sent), the items of a digest message, its fallback steps."""
        from apps.workflows.selectors import workflow_of

        return workflow_of(obj)

    def get_to(self, obj) -> str:
        if obj.to:
            return mask_address(obj.channel, obj.to)
        tokens = (obj.content or {}).get("device_tokens")
        if tokens:
            return ", ".join(mask_address("push", t) for t in tokens)
        return ""


class NotificationListItemSerializer(NotificationDetailSerializer):
    class Meta(NotificationDetailSerializer.Meta):
        fields = tuple(f for f in NotificationDetailSerializer.Meta.fields if f not in ("events", "workflow"))
