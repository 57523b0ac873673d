"""/api/v1/broadcasts/: a broadcast's status and counts, its cancel and reschedule. Broadcasts are made by
``POST /api/v1/notifications/{channel}/`` (or a batch item) with ``topic``: ``accepted.broadcast_accepted``
answers those. A key sees only its project's broadcasts, of the channels it may use (another: 404)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import not_found_response
from apps.api.ownership import key_owner
from apps.api.pagination import IdCursorPagination
from apps.notifications.api.views import NotificationResourceView, command_answer
from apps.notifications.selectors import parse_uuid

from ..models import Broadcast
from ..selectors import broadcast_get, owned_broadcasts
from ..services import broadcast_cancel, broadcast_counts, broadcast_reschedule
from .serializers import (
    BroadcastAcceptedSerializer,
    BroadcastCancelledSerializer,
    BroadcastDetailSerializer,
)

ID_PARAMETER = OpenApiParameter("key", str, OpenApiParameter.PATH, description="The broadcast id.")


def _detail(broadcast: Broadcast, **context) -> dict:
    return BroadcastDetailSerializer(broadcast, context={"counts": broadcast_counts(broadcast), **context}).data


class BroadcastListView(APIView):
    """GET /api/v1/broadcasts/: the key's project's broadcasts, newest first (no counts: see one)."""

    required_scope = "notifications:read"

    @extend_schema(operation_id="broadcasts_list", responses={200: BroadcastAcceptedSerializer(many=True)},
                   parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)])
    def get(self, request):
        paginator = IdCursorPagination()  # newest first: ids are time-ordered
        page = paginator.paginate_queryset(owned_broadcasts(**key_owner(request)), request, view=self)
        return paginator.get_paginated_response(BroadcastAcceptedSerializer(page, many=True).data)


class BroadcastView(APIView):
    """GET /api/v1/broadcasts/{id}/: status and counts per status; PATCH reschedules a scheduled one."""

    required_scopes = {"GET": "notifications:read", "PATCH": "notifications:write"}

    @extend_schema(operation_id="broadcasts_retrieve", parameters=[ID_PARAMETER],
                   responses={200: BroadcastDetailSerializer},
                   description="The broadcast and its notifications per status (counted at most every "
                               "NOTIFIER_BROADCAST_COUNTS_TTL seconds). Another project's: 404.")
    def get(self, request, key: str):
        broadcast = broadcast_get(key, **key_owner(request))
        if broadcast is None:
            return not_found_response()
        return Response(_detail(broadcast))

    @extend_schema(operation_id="broadcasts_reschedule", parameters=[ID_PARAMETER],
                   request=NotificationResourceView.RescheduleInputSerializer, responses={200: BroadcastDetailSerializer},
                   description="Move a broadcast that is still `scheduled` to a new `scheduled_for` (409 otherwise).")
    def patch(self, request, key: str):
        data = request.data if isinstance(request.data, dict) else {}
        extra = {name: ["Only scheduled_for can be changed."] for name in sorted(set(data) - {"scheduled_for"})}
        if extra:
            raise ValidationError(extra)
        checked = NotificationResourceView.RescheduleInputSerializer(data=data)
        checked.is_valid(raise_exception=True)
        return _change(key, request, lambda broadcast_id, owner: broadcast_reschedule(
            broadcast_id=broadcast_id, scheduled_for=checked.validated_data["scheduled_for"], **owner),
            lambda broadcast, _: _detail(broadcast))


def _change(key: str, request, change, answer) -> Response:
    """Run ``change(id, owner)`` on the key's broadcast and answer ``answer(broadcast, result)``: 404 for an id
    that is not the key's, 409 when the broadcast's status does not allow it, 400 for a ValueError."""
    broadcast_id = parse_uuid(key)
    if broadcast_id is None:
        return not_found_response()
    owner = key_owner(request)
    return command_answer(lambda: change(broadcast_id, owner),
                          lambda result: answer(broadcast_get(key, **owner), result))


class BroadcastCancelView(APIView):
    """POST /api/v1/broadcasts/{id}/cancel/: stop it and cancel its notifications not yet sending."""

    required_scope = "notifications:write"

    @extend_schema(operation_id="broadcasts_cancel", request=None, parameters=[ID_PARAMETER],
                   responses={200: BroadcastCancelledSerializer},
                   description="No more notifications are created; those that have not started sending are "
                               "cancelled (`cancelled`: how many). An already cancelled broadcast: 409.")
    def post(self, request, key: str):
        return _change(key, request, lambda broadcast_id, owner: broadcast_cancel(broadcast_id=broadcast_id, **owner),
                       lambda broadcast, cancelled: BroadcastCancelledSerializer(broadcast, context={
                           "counts": broadcast_counts(broadcast), "cancelled": cancelled}).data)
