"""/api/v1/digests/ (the held digests) and /api/v1/notifications/{id}/fallback/cancel/. Thin views."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import not_found_response
from apps.api.ownership import key_owner
from apps.notifications.selectors import parse_uuid

from ..fallback import fallback_cancel
from ..selectors import digests_open
from .serializers import OpenDigestSerializer

MAX_DIGESTS = 500


class OpenDigestListView(APIView):
    """GET /api/v1/digests/?recipient=&key=: the key's project's digests still collecting, with their items."""

    required_scope = "notifications:read"

    @extend_schema(
        operation_id="digests_list",
        parameters=[OpenApiParameter("recipient", str, description="The recipient's external id."),
                    OpenApiParameter("key", str, description="The digest key.")],
        responses={200: inline_serializer("OpenDigests", {"results": OpenDigestSerializer(many=True)})},
        description=f"Digests held until their window ends (at most {MAX_DIGESTS}, the soonest first).",
    )
    def get(self, request):
        params = request.query_params
        groups = digests_open(project_id=request.auth.project_id, recipient=params.get("recipient"),
                              key=params.get("key"))[:MAX_DIGESTS]
        return Response({"results": OpenDigestSerializer(groups, many=True).data})


class FallbackCancelView(APIView):
    """POST /api/v1/notifications/{id}/fallback/cancel/: cancel the fallback steps still pending."""

    required_scope = "notifications:write"

    @extend_schema(
        operation_id="notifications_fallback_cancel", request=None,
        responses={200: inline_serializer("FallbackCancelled", {"cancelled": serializers.IntegerField()})},
        description="Cancel the pending fallback steps of one of the key's project's notifications (any other: 404).",
    )
    def post(self, request, key: str):
        notification_id = parse_uuid(key)
        cancelled = None if notification_id is None else fallback_cancel(notification_id=notification_id,
                                                                         **key_owner(request))
        if cancelled is None:
            return not_found_response()
        return Response({"cancelled": cancelled})
