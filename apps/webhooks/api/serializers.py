from django.conf import settings
from rest_framework import serializers

from notifier.netguard import UnsafeURL, validate_url

from ..models import EVENTS, WebhookEndpoint


class EndpointInputSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2048)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), min_length=1, max_length=len(EVENTS))
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")

    def validate_url(self, value: str) -> str:
        try:
            validate_url(value, allow_private=settings.NOTIFIER_WEBHOOK_ALLOW_PRIVATE)
        except UnsafeURL as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ("id", "url", "description", "events", "active", "disabled_at", "disabled_reason",
                  "consecutive_failures", "last_error", "last_success_at", "last_failure_at", "created_at")


class EndpointCreatedSerializer(EndpointSerializer):
    """The answer to a registration: the only time the secret is shown."""

    class Meta(EndpointSerializer.Meta):
        fields = EndpointSerializer.Meta.fields + ("secret",)
