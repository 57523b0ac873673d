"""Output serializers of /api/v1/broadcasts/ (for the answers and the OpenAPI schema)."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.notifications.models import Status

from ..models import Broadcast


class BroadcastAcceptedSerializer(serializers.Serializer):
    """The 202 of a broadcast request (``POST /api/v1/notifications/{channel}/`` with ``topic``)."""

    broadcast_id = serializers.UUIDField(source="id")
    status = serializers.CharField()
    status_url = serializers.CharField()
    channel = serializers.CharField()
    topic = serializers.CharField(source="topic_key")
    priority = serializers.CharField()
    category = serializers.CharField()
    created_at = serializers.DateTimeField()
    scheduled_for = serializers.DateTimeField(allow_null=True)


class BroadcastCountsSerializer(serializers.Serializer):
    """Its notifications per status."""

    def get_fields(self):
        return {status: serializers.IntegerField() for status in Status.values}


class BroadcastDetailSerializer(serializers.ModelSerializer):
    topic = serializers.CharField(source="topic_key")
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Broadcast
        fields = ("id", "status", "channel", "topic", "priority", "category", "template", "locale", "scheduled_for",
                  "expires_at", "metadata", "group_key", "created", "skipped", "counts", "created_at", "started_at",
                  "finished_at")

    @extend_schema_field(BroadcastCountsSerializer)
    def get_counts(self, broadcast) -> dict:
        return self.context["counts"]


class BroadcastCancelledSerializer(BroadcastDetailSerializer):
    cancelled = serializers.SerializerMethodField()

    class Meta(BroadcastDetailSerializer.Meta):
        fields = (*BroadcastDetailSerializer.Meta.fields, "cancelled")

    def get_cancelled(self, broadcast) -> int:
        return self.context["cancelled"]
