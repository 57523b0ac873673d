import threading

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Channel, Status
from ..selectors import notification_get, notification_list
from ..batch import batch_max, notifications_create_batch, validate_notification
from ..services import notifications_create
from ..validation import NotificationInputSerializer
from .errors import not_found_response
from .serializers import NotificationAcceptedSerializer, NotificationDetailSerializer, NotificationListItemSerializer


class IdCursorPagination(CursorPagination):
    """Newest first; ids are time-ordered UUIDs, so the id is the cursor."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {"type": "object", "properties": {"results": schema, "next": {"type": "string", "nullable": True}}}


def _location(notification) -> str:
    return f"/api/v1/notifications/{notification.id}/"


_accepted = threading.local()


def accepted_body(notification) -> dict:
    """``NotificationAcceptedSerializer(notification).data``, with the serializer's fields built once per thread."""
    serializer = getattr(_accepted, "serializer", None)
    if serializer is None:
        serializer = _accepted.serializer = NotificationAcceptedSerializer()
    return serializer.to_representation(notification)


class NotificationBatchRequestSerializer(serializers.Serializer):
    """Schema only: the view checks the envelope and ``batch.notifications_create_batch`` each item."""

    notifications = serializers.ListField(child=serializers.DictField(), max_length=1000)


class NotificationBatchView(APIView):
    """POST /api/v1/notifications/batch/: up to NOTIFIER_BATCH_MAX notifications, one result per item."""

    required_scope = "notifications:write"

    @extend_schema(operation_id="notifications_batch_create", request=NotificationBatchRequestSerializer,
                   responses={202: inline_serializer("NotificationBatchResults", {
                       "results": serializers.ListField(child=serializers.DictField())})})
    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object with a 'notifications' list."]})
        items = data.get("notifications")
        limit = batch_max()
        if items is None:
            raise ValidationError({"notifications": ["This field is required."]})
        if not isinstance(items, list):
            kind = type(items).__name__
            raise ValidationError({"notifications": [f'Expected a list of items but got type "{kind}".']})
        if not items:
            raise ValidationError({"notifications": ["This list may not be empty."]})
        if len(items) > limit:
            raise ValidationError({"notifications": [f"At most {limit} notifications per batch; got {len(items)}."]})
        results = notifications_create_batch(items=items, api_key=request.auth)
        return Response({"results": results}, status=status.HTTP_202_ACCEPTED)


class NotificationResourceView(APIView):
    """``/api/v1/notifications/{key}/``: POST with a channel name creates, GET with an id reads."""

    required_scopes = {"POST": "notifications:write", "GET": "notifications:read", "PATCH": "notifications:write"}

    @extend_schema(
        operation_id="notifications_create",
        parameters=[OpenApiParameter("key", str, OpenApiParameter.PATH, enum=Channel.values,
                                     description="The channel: email, sms, push or in_app.")],
        request=NotificationInputSerializer, responses={202: NotificationAcceptedSerializer},
    )
    def post(self, request, key: str):
        channel = key
        if channel not in Channel.values:
            return not_found_response()
        if not request.auth.allows_channel(channel):
            raise PermissionDenied(f"This API key may not send {channel} notifications.")
        # Same result as NotificationInputSerializer(data=..., context={"channel": channel}), without
        # building the serializer's fields on every request (see batch.ItemValidator).
        spec = validate_notification(channel=channel, data=request.data)
        notification = notifications_create(specs=[spec], api_key=request.auth)[0]
        body = accepted_body(notification)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": _location(notification)})

    @extend_schema(
        operation_id="notifications_retrieve",
        parameters=[OpenApiParameter("key", str, OpenApiParameter.PATH, description="The notification id.")],
        responses={200: NotificationDetailSerializer},
    )
    def get(self, request, key: str):
        notification = notification_get(key)
        if notification is None:
            return not_found_response()
        return Response(NotificationDetailSerializer(notification).data)


class NotificationListView(APIView):
    """GET /api/v1/notifications/?status=&channel=&recipient=&category=."""

    required_scope = "notifications:read"

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Status.values),
            OpenApiParameter("channel", str, enum=Channel.values),
            OpenApiParameter("recipient", str, description="The recipient's external id."),
            OpenApiParameter("category", str),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int),
        ],
        responses={200: NotificationListItemSerializer(many=True)},
    )
    def get(self, request):
        params = request.query_params
        qs = notification_list(status=params.get("status"), channel=params.get("channel"),
                               recipient=params.get("recipient"), category=params.get("category"))
        paginator = IdCursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(NotificationListItemSerializer(page, many=True).data)

