from rest_framework import serializers


class InboxItemSerializer(serializers.Serializer):
    """An inbox item; its ``id`` is the notification's id. (Schema only: items are built by ``inbox_item``.)"""

    id = serializers.UUIDField()
    title = serializers.CharField()
    body = serializers.CharField()
    data = serializers.DictField()
    category = serializers.CharField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)
    archived_at = serializers.DateTimeField(allow_null=True)


class InboxPageSerializer(serializers.Serializer):
    results = InboxItemSerializer(many=True)
    next = serializers.CharField(allow_null=True)
    unread_count = serializers.IntegerField()


class ReadAllOutputSerializer(serializers.Serializer):
    marked = serializers.IntegerField()
    unread_count = serializers.IntegerField()


class TokenInputSerializer(serializers.Serializer):
    ttl_seconds = serializers.IntegerField(required=False, min_value=30, max_value=86400)


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
