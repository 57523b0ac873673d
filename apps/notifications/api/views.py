from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import API_CHANNELS, Channel, Status
from ..selectors import notification_get, notification_list
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


class NotificationResourceView(APIView):
    """``/api/v1/notifications/{key}/``: POST with a channel name creates, GET with an id reads."""

    required_scopes = {"POST": "notifications:write", "GET": "notifications:read", "PATCH": "notifications:write"}

    @extend_schema(
        operation_id="notifications_create",
        parameters=[OpenApiParameter("key", str, OpenApiParameter.PATH, enum=[c.value for c in API_CHANNELS],
                                     description="The channel: email, sms, push or in_app.")],
        request=NotificationInputSerializer, responses={202: NotificationAcceptedSerializer},
    )
    def post(self, request, key: str):
        channel = key
        if channel not in API_CHANNELS:
            return not_found_response()
        if not request.auth.allows_channel(channel):
            raise PermissionDenied(f"This API key may not send {channel} notifications.")
        serializer = NotificationInputSerializer(data=request.data, context={"channel": channel})
        serializer.is_valid(raise_exception=True)
        notification = notifications_create(specs=[serializer.validated_data], api_key=request.auth)[0]
        body = NotificationAcceptedSerializer(notification).data
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

