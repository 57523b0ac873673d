import threading

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import not_found_response
from apps.api.ownership import key_owner
from apps.api.pagination import IdCursorPagination
from apps.idempotency.services import HEADER as IDEMPOTENCY_HEADER
from apps.idempotency.services import idempotent
from apps.ops.dbrouter import reads_from_replica

from ..commands import Conflict, NotFound, notification_cancel, notification_reschedule, notifications_cancel_group
from ..intake.batch import batch_max, notifications_create_batch
from ..intake.groupcommit import notification_create_single
from ..intake.items import validate_notification
from ..intake.validation import AwareDateTimeField, NotificationInputSerializer
from ..models import API_CHANNELS, Channel, Status
from ..selectors import notification_get, notification_list, parse_uuid
from .serializers import NotificationAcceptedSerializer, NotificationDetailSerializer, NotificationListItemSerializer


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
    description="At most 255 characters. A repeat with the same key and body within 24 h returns the first "
                "response; the same key with another body: 422; while the first is still processed: 409.",
)


def notification_location(notification) -> str:
    return f"/api/v1/notifications/{notification.id}/"


_accepted = threading.local()


def accepted_body(notification) -> dict:
    """``NotificationAcceptedSerializer(notification).data``, with the serializer's fields built once per thread.

    Every field of that serializer reads the attribute of its own name, so its loop reduces to
    ``field.to_representation(value)`` (None stays None): the same values without DRF's per-field
    ``get_attribute`` walk and ``SkipField`` checks (``tests/app/test_notifications_api.py`` compares).
    """
    fields = getattr(_accepted, "fields", None)
    if fields is None:
        serializer = NotificationAcceptedSerializer()
        readable = list(serializer._readable_fields)
        assert all(f.source_attrs == [f.field_name] for f in readable), "accepted_body expects plain fields"
        fields = _accepted.fields = [(f.field_name, f.to_representation) for f in readable]
    return {name: None if (value := getattr(notification, name)) is None else represent(value)
            for name, represent in fields}


class NotificationBatchRequestSerializer(serializers.Serializer):
    """Schema only: the view checks the envelope and ``batch.notifications_create_batch`` each item."""

    notifications = serializers.ListField(child=serializers.DictField(), max_length=1000)


class NotificationBatchView(APIView):
    """POST /api/v1/notifications/batch/: up to NOTIFIER_BATCH_MAX notifications, one result per item."""

    required_scope = "notifications:write"

    @extend_schema(operation_id="notifications_batch_create", request=NotificationBatchRequestSerializer,
                   parameters=[IDEMPOTENCY_KEY_PARAMETER],
                   responses={202: inline_serializer("NotificationBatchResults", {
                       "results": serializers.ListField(child=serializers.DictField())})})
    def post(self, request):
        return idempotent(request, lambda: self._create(request))

    def _create(self, request):
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


def _accepted_or_broadcast():
    from drf_spectacular.utils import PolymorphicProxySerializer

    from apps.broadcasts.api.serializers import BroadcastAcceptedSerializer

    return PolymorphicProxySerializer(component_name="NotificationOrBroadcastAccepted",
                                      serializers=[NotificationAcceptedSerializer, BroadcastAcceptedSerializer],
                                      resource_type_field_name=None)


_ACCEPTED_OR_BROADCAST = _accepted_or_broadcast()


class NotificationResourceView(APIView):
    """``/api/v1/notifications/{key}/``: POST with a channel name creates, GET with an id reads."""

    required_scopes = {"POST": "notifications:write", "GET": "notifications:read", "PATCH": "notifications:write"}

    @extend_schema(
        operation_id="notifications_create",
        parameters=[OpenApiParameter("key", str, OpenApiParameter.PATH, enum=[c.value for c in API_CHANNELS],
                                     description="The channel: email, sms, push or in_app."),
                    IDEMPOTENCY_KEY_PARAMETER],
        request=NotificationInputSerializer, responses={202: _ACCEPTED_OR_BROADCAST},
        description="Creates one notification; with `topic` instead of `recipient`/`to`, a broadcast to the "
                    "topic's subscribers (docs/broadcasts.md), answered with its `broadcast_id` and `status_url`.",
    )
    def post(self, request, key: str):
        return idempotent(request, lambda: self._create(request, key))

    def _create(self, request, key: str):
        channel = key
        if channel not in API_CHANNELS:
            return not_found_response()
        if not request.auth.allows_channel(channel):
            raise PermissionDenied(f"This API key may not send {channel} notifications.")
        # Same result as NotificationInputSerializer(data=..., context={"channel": channel}), without
        # building the serializer's fields on every request (see batch.ItemValidator).
        spec = validate_notification(channel=channel, data=request.data, project_id=request.auth.project_id)
        if spec.topic is not None:  # a broadcast to a topic's subscribers
            from apps.broadcasts.api.accepted import broadcast_accepted

            return broadcast_accepted(spec=spec, data=request.data, api_key=request.auth)
        notification = notification_create_single(spec=spec, api_key=request.auth)
        body = accepted_body(notification)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": notification_location(notification)})

    @extend_schema(
        operation_id="notifications_retrieve",
        parameters=[OpenApiParameter("key", str, OpenApiParameter.PATH, description="The notification id.")],
        responses={200: NotificationDetailSerializer},
        description="One of the key's project's notifications, of a channel the key may use; any other: 404.",
    )
    def get(self, request, key: str):
        notification = notification_get(key, **key_owner(request))
        if notification is None:
            return not_found_response()
        return Response(NotificationDetailSerializer(notification).data)

    class RescheduleInputSerializer(serializers.Serializer):
        scheduled_for = AwareDateTimeField()

    @extend_schema(
        operation_id="notifications_reschedule",
        parameters=[OpenApiParameter("key", str, OpenApiParameter.PATH, description="The notification id.")],
        request=RescheduleInputSerializer, responses={200: NotificationDetailSerializer},
        description="Move a notification that is still `scheduled` to a new `scheduled_for` (409 otherwise).",
    )
    def patch(self, request, key: str):
        notification_id = parse_uuid(key)
        if notification_id is None:
            return not_found_response()
        serializer = self.RescheduleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        extra = sorted(set(request.data) - set(serializer.fields))
        if extra:
            raise ValidationError({name: ["Only scheduled_for can be changed."] for name in extra})
        return command_answer(
            lambda: notification_reschedule(notification_id=notification_id,
                                            scheduled_for=serializer.validated_data["scheduled_for"],
                                            **key_owner(request)),
            lambda _: NotificationDetailSerializer(notification_get(key, **key_owner(request))).data)


class StatusConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The notification is no longer in a state that allows this."
    default_code = "conflict"


def command_answer(call, answer) -> Response:
    """Run a command (apps.notifications.commands, or one built on them) and answer ``answer(result)``; its
    refusals as the API answers them: a ValueError 400 under ``scheduled_for``, NotFound 404, Conflict 409."""
    try:
        result = call()
    except ValueError as exc:
        raise ValidationError({"scheduled_for": [str(exc)]}) from exc
    except NotFound:
        return not_found_response()
    except Conflict as exc:
        raise StatusConflict(str(exc)) from exc
    return Response(answer(result))


class NotificationCancelView(APIView):
    """POST /api/v1/notifications/{id}/cancel/: cancel one that has not started sending."""

    required_scope = "notifications:write"

    @extend_schema(operation_id="notifications_cancel", request=None,
                   responses={200: NotificationDetailSerializer},
                   description="Cancel one of the key's project's notifications that has not started sending "
                               "(409 otherwise); another project's, or of a channel the key may not use: 404.")
    def post(self, request, key: str):
        notification_id = parse_uuid(key)
        if notification_id is None:
            return not_found_response()
        try:
            notification_cancel(notification_id=notification_id, detail="cancelled through the API",
                                **key_owner(request))
        except NotFound:
            return not_found_response()
        except Conflict as exc:
            raise StatusConflict(str(exc)) from exc
        return Response(NotificationDetailSerializer(notification_get(key, **key_owner(request))).data)


class NotificationGroupCancelView(APIView):
    """POST /api/v1/notifications/cancel/ {"group_key"}: cancel a whole group that has not started sending
    (the key's project's notifications of that group, of the channels the key may use)."""

    required_scope = "notifications:write"

    class InputSerializer(serializers.Serializer):
        group_key = serializers.CharField(max_length=255, trim_whitespace=False)

    @extend_schema(
        operation_id="notifications_cancel_group", request=InputSerializer,
        responses={200: inline_serializer("GroupCancelled", {
            "group_key": serializers.CharField(), "cancelled": serializers.IntegerField()})},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group_key = serializer.validated_data["group_key"]
        cancelled = notifications_cancel_group(group_key=group_key, **key_owner(request))
        return Response({"group_key": group_key, "cancelled": cancelled})


class NotificationListView(APIView):
    """GET /api/v1/notifications/?status=&channel=&recipient=&category=: the key's project's notifications
    of the channels the key may use."""

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
    @reads_from_replica
    def get(self, request):
        params = request.query_params
        qs = notification_list(status=params.get("status"), channel=params.get("channel"),
                               recipient=params.get("recipient"), category=params.get("category"),
                               **key_owner(request))
        paginator = IdCursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(NotificationListItemSerializer(page, many=True).data)

