"""Inbox endpoints under /api/v1/recipients/{external_id}/: list, read/unread/archive, token."""
from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import not_found_response
from apps.api.pagination import CheckedCursorPagination
from apps.ops.dbrouter import reads_from_replica

from ..authentication import ApiKeyOrRecipientTokenAuthentication
from ..permissions import InboxAccess
from ..selectors import inbox_entry_get, inbox_item, inbox_list, inbox_unread_count
from ..services import inbox_archive, inbox_mark_read, inbox_mark_unread
from ..tokens import RecipientToken, recipient_token_issue
from .serializers import (InboxItemSerializer, InboxPageSerializer, ReadAllOutputSerializer, TokenInputSerializer,
                          TokenOutputSerializer)

READ_SCOPES = ("recipients:read", "notifications:read")
WRITE_SCOPES = ("recipients:write", "notifications:write")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _recipient(request, external_id: str):
    """The recipient in the URL: the API key's project's, or the very row a recipient token was minted for."""
    from apps.recipients.models import Recipient

    recipients = Recipient.objects.filter(external_id=external_id).only("id", "external_id", "project_id")
    if isinstance(request.auth, RecipientToken):
        recipient = recipients.filter(pk=request.auth.recipient_id).first()
        if recipient is None and recipients.exists():
            raise PermissionDenied("This recipient token is for another recipient's inbox.")
        return recipient
    return recipients.filter(project_id=request.auth.project_id).first()


def _flag(params, name: str, *, allow_all: bool = False, default=None):
    value = params.get(name)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    if allow_all and lowered in ("all", "any"):
        return None
    raise ValidationError({name: ["Must be true or false" + (" or all." if allow_all else ".")]})


class InboxPagination(CheckedCursorPagination):
    ordering = "-notification_id"  # newest first: notification ids are time-ordered UUIDs
    max_page_size = 200

    def get_paginated_response(self, data, unread_count: int = 0):
        return Response({"results": data, "next": self.get_next_link(), "unread_count": unread_count})


class _InboxView(APIView):
    authentication_classes = [ApiKeyOrRecipientTokenAuthentication]
    permission_classes = [InboxAccess]
    allow_recipient_token = True
    api_key_scopes = {"GET": READ_SCOPES, "POST": WRITE_SCOPES}


class InboxListView(_InboxView):
    """GET /api/v1/recipients/{external_id}/inbox/?unread=&archived=&category="""

    @extend_schema(
        operation_id="inbox_list",
        parameters=[
            OpenApiParameter("unread", bool, description="Only unread (true) or only read (false) items."),
            OpenApiParameter("archived", str, enum=["false", "true", "all"],
                             description="Archived items are left out unless archived=true (only them) or all."),
            OpenApiParameter("category", str),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int),
        ],
        responses={200: InboxPageSerializer},
    )
    @reads_from_replica
    def get(self, request, external_id: str):
        recipient = _recipient(request, external_id)
        if recipient is None:
            return not_found_response()
        params = request.query_params
        qs = inbox_list(
            recipient_id=recipient.pk, unread=_flag(params, "unread"),
            archived=_flag(params, "archived", allow_all=True, default=False), category=params.get("category"),
        )
        paginator = InboxPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        items = [inbox_item(entry.notification, entry) for entry in page]
        return paginator.get_paginated_response(items, unread_count=inbox_unread_count(recipient_id=recipient.pk))


class InboxItemActionView(_InboxView):
    """POST /api/v1/recipients/{external_id}/inbox/{id}/{read|unread|archive|unarchive}/"""

    action: str = ""

    @extend_schema(request=None, responses={200: InboxItemSerializer})
    def post(self, request, external_id: str, item_id: str):
        recipient = _recipient(request, external_id)
        if recipient is None:
            return not_found_response()
        entry = inbox_entry_get(recipient_id=recipient.pk, notification_id=item_id)
        if entry is None:
            return not_found_response()
        ids = [entry.notification_id]
        if self.action == "read":
            inbox_mark_read(recipient_id=recipient.pk, notification_ids=ids)
        elif self.action == "unread":
            inbox_mark_unread(recipient_id=recipient.pk, notification_ids=ids)
        else:
            inbox_archive(recipient_id=recipient.pk, notification_ids=ids, archived=self.action == "archive")
        entry = inbox_entry_get(recipient_id=recipient.pk, notification_id=item_id)
        return Response(inbox_item(entry.notification, entry))


class InboxReadAllView(_InboxView):
    """POST /api/v1/recipients/{external_id}/inbox/read-all/: every unread item becomes read."""

    @extend_schema(operation_id="inbox_read_all", request=None, responses={200: ReadAllOutputSerializer})
    def post(self, request, external_id: str):
        recipient = _recipient(request, external_id)
        if recipient is None:
            return not_found_response()
        marked = inbox_mark_read(recipient_id=recipient.pk, notification_ids=None)
        return Response({"marked": len(marked), "unread_count": inbox_unread_count(recipient_id=recipient.pk)})


class RecipientTokenView(APIView):
    """POST /api/v1/recipients/{external_id}/token/ (API key): a short-lived token for that inbox.

    The token reads and updates the inbox, so minting one takes what doing both with the key takes: one
    of the read scopes and one of the write scopes (a write-only key cannot read the inbox through a
    token), and a key that may use in_app notifications."""

    authentication_classes = [ApiKeyOrRecipientTokenAuthentication]
    permission_classes = [InboxAccess]
    allow_recipient_token = False
    api_key_scopes = {"POST": WRITE_SCOPES}
    api_key_all_of = {"POST": (READ_SCOPES, WRITE_SCOPES)}

    @extend_schema(operation_id="recipient_token_create", request=TokenInputSerializer,
                   responses={200: TokenOutputSerializer})
    def post(self, request, external_id: str):
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        serializer = TokenInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        recipient = _recipient(request, external_id)
        if recipient is None:
            return not_found_response()
        ttl = serializer.validated_data.get("ttl_seconds", settings.NOTIFIER_RECIPIENT_TOKEN_TTL)
        token, expires_at = recipient_token_issue(recipient=recipient, ttl=ttl)
        return Response({"token": token, "expires_at": serializers.DateTimeField().to_representation(expires_at)})
