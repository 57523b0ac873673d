"""Input validation and output shapes for the topics API."""
from __future__ import annotations

from rest_framework import serializers

from apps.recipients.api.serializers import StrictSerializer
from apps.recipients.api.views import MAX_EXTERNAL_ID

from ..models import Topic
from ..services import MAX_SUBSCRIBERS_PER_CALL, UNKNOWN_SHOWN


class TopicInputSerializer(StrictSerializer):
    """PUT body: every field optional; a given field replaces the stored value ("" or null clears it)."""

    ignored_fields = ("key", "subscriber_count", "created_at", "updated_at")  # read-only fields of the answer

    name = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, allow_null=True,
                                        trim_whitespace=False)

    def validate_name(self, value):
        return value or ""

    def validate_description(self, value):
        return value or ""


class TopicOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Topic
        fields = ("key", "name", "description", "created_at", "updated_at")


class TopicDetailSerializer(TopicOutputSerializer):
    subscriber_count = serializers.IntegerField(read_only=True)

    class Meta(TopicOutputSerializer.Meta):
        fields = ("key", "name", "description", "subscriber_count", "created_at", "updated_at")


class TopicListSerializer(serializers.Serializer):
    """Schema only: a page of the project's topics, by key (no subscriber counts: GET a topic for its own)."""

    results = TopicOutputSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The next page's URL; null on the last page.")


class ExternalIdListField(serializers.ListField):
    """1 to 10,000 recipient external ids. Checked in one pass (not a CharField per item): 10,000 ids
    are validated in about a millisecond."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(max_length=MAX_EXTERNAL_ID), min_length=1,
                         max_length=MAX_SUBSCRIBERS_PER_CALL, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list of recipient external ids.")
        if not data:
            raise serializers.ValidationError("Give at least one recipient external id.")
        if len(data) > MAX_SUBSCRIBERS_PER_CALL:
            raise serializers.ValidationError(
                f"At most {MAX_SUBSCRIBERS_PER_CALL:,} recipients per call ({len(data):,} given).")
        bad = [i for i, v in enumerate(data)
               if type(v) is not str or not v or len(v) > MAX_EXTERNAL_ID or "\x00" in v]
        if bad:
            shown = ", ".join(str(i) for i in bad[:10])
            raise serializers.ValidationError(
                f"Each item must be a recipient external id: a string of 1 to {MAX_EXTERNAL_ID} characters "
                f"(not at index {shown}{' …' if len(bad) > 10 else ''}).")
        return data


class SubscribersInputSerializer(StrictSerializer):
    """The recipients to subscribe (POST) or unsubscribe (DELETE)."""

    recipients = ExternalIdListField(help_text=f"Recipient external ids of the key's project, at most "
                                               f"{MAX_SUBSCRIBERS_PER_CALL:,}; repeats are fine.")


class _UnknownSerializer(serializers.Serializer):
    unknown = serializers.ListField(child=serializers.CharField(),
                                    help_text=f"External ids that are no recipient of the project (the first "
                                              f"{UNKNOWN_SHOWN}, in the order given).")
    unknown_count = serializers.IntegerField(help_text="How many external ids were unknown.")


class SubscribedSerializer(_UnknownSerializer):
    subscribed = serializers.IntegerField(help_text="Recipients newly subscribed.")
    already = serializers.IntegerField(help_text="Recipients that were subscribed already.")


class UnsubscribedSerializer(_UnknownSerializer):
    removed = serializers.IntegerField(help_text="Subscriptions removed.")


class SubscriberSerializer(serializers.Serializer):
    recipient = serializers.CharField(source="external_id", help_text="The recipient's external id.")
    subscribed_at = serializers.DateTimeField(source="created_at")


class SubscriberListSerializer(serializers.Serializer):
    """Schema only: a page of a topic's subscribers, in the order they were made recipients."""

    results = SubscriberSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The next page's URL; null on the last page.")
