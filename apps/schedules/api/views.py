from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import not_found_response
from apps.api.ownership import key_owner
from apps.api.pagination import IdCursorPagination

from ..selectors import recurring_send_get, recurring_send_list
from ..services import recurring_send_create, recurring_send_delete
from .serializers import SCHEDULE_FIELDS, ScheduleInputSerializer, ScheduleOutputSerializer


class ScheduleListView(APIView):
    """GET /api/v1/schedules/ lists the key's project's recurring sends (of the channels the key may use);
    POST creates one of its project. Another project's recurring send is not found (404)."""

    required_scopes = {"GET": "notifications:read", "POST": "notifications:write"}

    @extend_schema(operation_id="schedules_list", responses={200: ScheduleOutputSerializer(many=True)})
    def get(self, request):
        paginator = IdCursorPagination()
        page = paginator.paginate_queryset(recurring_send_list(**key_owner(request)), request, view=self)
        return paginator.get_paginated_response(ScheduleOutputSerializer(page, many=True).data)

    @extend_schema(operation_id="schedules_create", request=ScheduleInputSerializer,
                   responses={201: ScheduleOutputSerializer})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        when = ScheduleInputSerializer(data=request.data)
        when.is_valid(raise_exception=True)
        data = when.validated_data
        channel = data["channel"]
        if not request.auth.allows_channel(channel):
            raise PermissionDenied(f"This API key may not send {channel} notifications.")
        send = {k: v for k, v in request.data.items() if k not in SCHEDULE_FIELDS}
        periodic_task = recurring_send_create(
            send=send, interval_seconds=data.get("interval_seconds"), cron=data.get("cron"),
            timezone_name=data.get("timezone"), name=data.get("name", ""), description=data["description"],
            enabled=data["enabled"], start_at=data.get("start_at"), end_at=data.get("end_at"), api_key=request.auth,
        )
        body = ScheduleOutputSerializer(recurring_send_get(periodic_task.pk, **key_owner(request))).data
        return Response(body, status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/schedules/{periodic_task.pk}/"})


class ScheduleDetailView(APIView):
    """GET or DELETE /api/v1/schedules/{id}/."""

    required_scopes = {"GET": "notifications:read", "DELETE": "notifications:write"}

    @extend_schema(operation_id="schedules_retrieve", responses={200: ScheduleOutputSerializer})
    def get(self, request, schedule_id: str):
        periodic_task = recurring_send_get(schedule_id, **key_owner(request))
        if periodic_task is None:
            return not_found_response()
        return Response(ScheduleOutputSerializer(periodic_task).data)

    @extend_schema(operation_id="schedules_destroy", responses={204: None})
    def delete(self, request, schedule_id: str):
        periodic_task = recurring_send_get(schedule_id, **key_owner(request))
        if periodic_task is None:
            return not_found_response()
        recurring_send_delete(periodic_task=periodic_task)
        return Response(status=status.HTTP_204_NO_CONTENT)
