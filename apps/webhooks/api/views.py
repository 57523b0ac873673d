"""/api/v1/webhooks/endpoints/: register, list, read, delete and re-enable outbound webhook endpoints.

An endpoint belongs to the registering key's project and hears only of that project's notifications, of
the channels the key may use. Keys see and change only their project's endpoints (a key restricted to
some channels: only endpoints restricted to those); any other is not found (404). Registering one takes
``notifications:read`` as well as ``notifications:write``: an endpoint receives the notifications' data.
A project has at most ``NOTIFIER_WEBHOOK_MAX_ENDPOINTS`` endpoints: one more is a 400 (``non_field_errors``).
"""
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import not_found_response
from apps.api.ownership import key_owner
from apps.api.pagination import IdCursorPagination

from ..selectors import endpoint_owned, endpoints_owned
from ..services import (EndpointLimitReached, webhook_endpoint_create, webhook_endpoint_delete,
                        webhook_endpoint_enable)
from .serializers import EndpointCreatedSerializer, EndpointInputSerializer, EndpointSerializer


def _endpoint(request, endpoint_id: str):
    return endpoint_owned(endpoint_id, **key_owner(request))


class EndpointListView(APIView):
    required_scopes = {"GET": "notifications:read", "POST": ("notifications:read", "notifications:write")}

    @extend_schema(operation_id="webhook_endpoints_create", request=EndpointInputSerializer,
                   responses={201: EndpointCreatedSerializer})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        serializer = EndpointInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            endpoint = webhook_endpoint_create(**serializer.validated_data, api_key=request.auth)
        except EndpointLimitReached as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        body = EndpointCreatedSerializer(endpoint).data
        return Response(body, status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/webhooks/endpoints/{endpoint.id}/"})

    @extend_schema(operation_id="webhook_endpoints_list", responses={200: EndpointSerializer(many=True)})
    def get(self, request):
        paginator = IdCursorPagination()
        page = paginator.paginate_queryset(endpoints_owned(**key_owner(request)), request, view=self)
        return paginator.get_paginated_response(EndpointSerializer(page, many=True).data)


class EndpointDetailView(APIView):
    required_scopes = {"GET": "notifications:read", "DELETE": "notifications:write"}

    @extend_schema(operation_id="webhook_endpoints_retrieve", responses={200: EndpointSerializer})
    def get(self, request, endpoint_id: str):
        endpoint = _endpoint(request, endpoint_id)
        if endpoint is None:
            return not_found_response()
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(operation_id="webhook_endpoints_destroy", responses={204: None})
    def delete(self, request, endpoint_id: str):
        endpoint = _endpoint(request, endpoint_id)
        if endpoint is None:
            return not_found_response()
        webhook_endpoint_delete(endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointEnableView(APIView):
    required_scope = "notifications:write"

    @extend_schema(operation_id="webhook_endpoints_enable", request=None, responses={200: EndpointSerializer})
    def post(self, request, endpoint_id: str):
        """Re-enable an endpoint that was disabled after failing, and reset its failure streak."""
        endpoint = _endpoint(request, endpoint_id)
        if endpoint is None:
            return not_found_response()
        return Response(EndpointSerializer(webhook_endpoint_enable(endpoint=endpoint)).data)
