"""/api/v1/broadcasts/: a broadcast's status and counts, its cancel and reschedule. Broadcasts are made by
``POST /api/v1/notifications/{channel}/`` (or a batch item) with ``topic``: ``broadcast_accepted`` below
answers those. A key sees only its project's broadcasts, of the channels it may use (another: 404)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.notifications.api.errors import not_found_response
from apps.notifications.api.views import StatusConflict, key_owner
from apps.notifications.scheduling import Conflict, NotFound
from apps.notifications.selectors import parse_uuid
from apps.notifications.validation import AwareDateTimeField

from ..models import Broadcast
from ..selectors import broadcast_get, owned_broadcasts
from ..services import broadcast_cancel, broadcast_counts, broadcast_create, broadcast_reschedule
from .serializers import (
    BroadcastAcceptedSerializer,
    BroadcastBatchResultSerializer,
    BroadcastCancelledSerializer,
    BroadcastDetailSerializer,
    status_url,
)

ID_PARAMETER = OpenApiParameter("key", str, OpenApiParameter.PATH, description="The broadcast id.")


def broadcast_accepted(*, spec, data, api_key, batch: bool = False) -> Response | dict:
    """Create the broadcast of a validated request that named a topic: the single endpoint's 202 (or, for
    a batch item, its result)."""
    context = data.get("context") if isinstance(data, dict) else None
    broadcast = broadcast_create(spec=spec, template_context=context, api_key=api_key)
    if batch:
        return BroadcastBatchResultSerializer(broadcast).data
    return Response(BroadcastAcceptedSerializer(broadcast).data, status=status.HTTP_202_ACCEPTED,
                    headers={"Location": status_url(broadcast)})


def _detail(broadcast: Broadcast, **context) -> dict:
    return BroadcastDetailSerializer(broadcast, context={"counts": broadcast_counts(broadcast), **context}).data


class BroadcastPagination(CursorPagination):
    ordering = "-id"  # time-ordered ids: newest first
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {"type": "object", "properties": {"results": schema, "next": {"type": "string", "nullable": True}}}


class BroadcastListView(APIView):
    """GET /api/v1/broadcasts/: the key's project's broadcasts, newest first (no counts: see one)."""

    required_scope = "notifications:read"

    @extend_schema(operation_id="broadcasts_list", responses={200: BroadcastAcceptedSerializer(many=True)},
                   parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)])
    def get(self, request):
        paginator = BroadcastPagination()
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

    class RescheduleInputSerializer(serializers.Serializer):
        scheduled_for = AwareDateTimeField()

    @extend_schema(operation_id="broadcasts_reschedule", parameters=[ID_PARAMETER], request=RescheduleInputSerializer,
                   responses={200: BroadcastDetailSerializer},
                   description="Move a broadcast that is still `scheduled` to a new `scheduled_for` (409 otherwise).")
    def patch(self, request, key: str):
        broadcast_id = parse_uuid(key)
        if broadcast_id is None:
            return not_found_response()
        serializer = self.RescheduleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        extra = sorted(set(request.data) - set(serializer.fields))
        if extra:
            raise ValidationError({name: ["Only scheduled_for can be changed."] for name in extra})
        scheduled_for = serializer.validated_data["scheduled_for"]
        try:
            broadcast_reschedule(broadcast_id=broadcast_id, scheduled_for=scheduled_for, **key_owner(request))
        except ValueError as exc:
            raise ValidationError({"scheduled_for": [str(exc)]}) from exc
        except NotFound:
            return not_found_response()
        except Conflict as exc:
            raise StatusConflict(str(exc)) from exc
        return Response(_detail(broadcast_get(key, **key_owner(request))))


class BroadcastCancelView(APIView):
    """POST /api/v1/broadcasts/{id}/cancel/: stop it and cancel its notifications not yet sending."""

    required_scope = "notifications:write"

    @extend_schema(operation_id="broadcasts_cancel", request=None, parameters=[ID_PARAMETER],
                   responses={200: BroadcastCancelledSerializer},
                   description="No more notifications are created; those that have not started sending are "
                               "cancelled (`cancelled`: how many). An already cancelled broadcast: 409.")
    def post(self, request, key: str):
        broadcast_id = parse_uuid(key)
        if broadcast_id is None:
            return not_found_response()
        try:
            cancelled = broadcast_cancel(broadcast_id=broadcast_id, **key_owner(request))
        except NotFound:
            return not_found_response()
        except Conflict as exc:
            raise StatusConflict(str(exc)) from exc
        broadcast = broadcast_get(key, **key_owner(request))
        return Response(BroadcastCancelledSerializer(
            broadcast, context={"counts": broadcast_counts(broadcast), "cancelled": cancelled}).data)
