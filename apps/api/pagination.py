"""Cursor pagination for every list endpoint: ``{"results": [...], "next"}``, and a cursor that cannot be
one of this list's (garbage, or forged with a position the ordering field cannot hold) is a 400 with a
``cursor`` field error before it reaches a query, never a database error."""
from __future__ import annotations

from base64 import b64decode

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

# PostgreSQL's bigint: a larger integer position would fail the query instead of matching nothing.
_BIGINT = (-(2**63), 2**63 - 1)


class CheckedCursorPagination(CursorPagination):
    """DRF's cursor pagination whose cursor is checked against the ordering field of the queryset."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:  # DRF's answer to a cursor it cannot decode
            raise ValidationError({self.cursor_query_param: [str(exc.detail)]}) from exc

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        try:  # DRF's decoding skips characters outside base64's alphabet: "%%%" would be the first page
            b64decode(encoded or "", validate=True)
        except ValueError as exc:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from exc
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not self.position_is_valid(cursor.position):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return cursor

    def position_is_valid(self, position: str) -> bool:
        """Whether ``position`` is a value of the first ordering field (``self.ordering`` is set by then)."""
        if "\x00" in position:
            return False
        try:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        except FieldDoesNotExist:  # an annotation: compared as text
            return True
        if isinstance(field, models.ForeignKey):
            field = field.target_field
        try:
            value = field.to_python(position)
        except (DjangoValidationError, TypeError, ValueError):
            return False
        if isinstance(value, int):
            return _BIGINT[0] <= value <= _BIGINT[1]
        return True

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {"type": "object", "properties": {"results": schema, "next": {"type": "string", "nullable": True}}}


class IdCursorPagination(CheckedCursorPagination):
    """Newest first; ids are time-ordered UUIDs, so the id is the cursor."""

    ordering = "-id"
