"""Recipients, their devices and their preferences. Thin views: logic in services and selectors.

Every recipient belongs to a project: a key sees and changes its own project's recipients only; an
external id of another project is not found (404), and a PUT makes the key's project its own.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import not_found_response

from ..selectors import device_get, device_list, preferences_document, recipient_get
from ..services import device_delete, device_register, preferences_update, recipient_erase, recipient_upsert
from .serializers import (
    DeviceInputSerializer,
    DeviceOutputSerializer,
    PreferencesInputSerializer,
    PreferencesOutputSerializer,
    RecipientInputSerializer,
    RecipientOutputSerializer,
)

READ, WRITE = "recipients:read", "recipients:write"
MAX_EXTERNAL_ID = 255


class RecipientView(APIView):
    """``/api/v1/recipients/{external_id}/``: PUT upserts, GET reads, DELETE erases personal data."""

    required_scopes = {"GET": READ, "HEAD": READ, "PUT": WRITE, "DELETE": WRITE}

    @extend_schema(operation_id="recipients_retrieve", responses={200: RecipientOutputSerializer})
    def get(self, request, external_id: str):
        recipient = recipient_get(external_id, project_id=request.auth.project_id)
        if recipient is None:
            return not_found_response()
        return Response(RecipientOutputSerializer(recipient).data)

    @extend_schema(operation_id="recipients_upsert", request=RecipientInputSerializer,
                   responses={200: RecipientOutputSerializer, 201: RecipientOutputSerializer})
    def put(self, request, external_id: str):
        if len(external_id) > MAX_EXTERNAL_ID:
            return Response({"errors": {"external_id": [f"At most {MAX_EXTERNAL_ID} characters."]}},
                            status=status.HTTP_400_BAD_REQUEST)
        serializer = RecipientInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = request.data.get("external_id")
        if given is not None and given != external_id:
            return Response({"errors": {"external_id": ["Does not match the URL."]}},
                            status=status.HTTP_400_BAD_REQUEST)
        recipient, created = recipient_upsert(external_id=external_id, data=serializer.validated_data,
                                              project_id=request.auth.project_id)
        return Response(RecipientOutputSerializer(recipient).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(operation_id="recipients_destroy", responses={204: None})
    def delete(self, request, external_id: str):
        recipient = recipient_get(external_id, project_id=request.auth.project_id)
        if recipient is None:
            return not_found_response()
        recipient_erase(recipient=recipient)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeviceListView(APIView):
    """``/api/v1/recipients/{external_id}/devices/``: POST registers a device, GET lists them."""

    required_scopes = {"GET": READ, "HEAD": READ, "POST": WRITE}

    @extend_schema(operation_id="recipients_devices_list", responses={200: DeviceOutputSerializer(many=True)})
    def get(self, request, external_id: str):
        recipient = recipient_get(external_id, project_id=request.auth.project_id)
        if recipient is None:
            return not_found_response()
        return Response({"results": DeviceOutputSerializer(device_list(recipient), many=True).data, "next": None})

    @extend_schema(operation_id="recipients_devices_create", request=DeviceInputSerializer,
                   responses={201: DeviceOutputSerializer})
    def post(self, request, external_id: str):
        recipient = recipient_get(external_id, project_id=request.auth.project_id)
        if recipient is None:
            return not_found_response()
        serializer = DeviceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = device_register(recipient=recipient, **serializer.validated_data)
        return Response(DeviceOutputSerializer(device).data, status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/recipients/{external_id}/devices/{device.pk}/"})


class DeviceView(APIView):
    """``/api/v1/recipients/{external_id}/devices/{id}/``: DELETE unregisters the device."""

    required_scopes = {"GET": READ, "HEAD": READ, "DELETE": WRITE}

    def _device(self, request, external_id: str, device_id: str):
        recipient = recipient_get(external_id, project_id=request.auth.project_id)
        return device_get(recipient, device_id) if recipient is not None else None

    @extend_schema(operation_id="recipients_devices_retrieve", responses={200: DeviceOutputSerializer})
    def get(self, request, external_id: str, device_id: str):
        device = self._device(request, external_id, device_id)
        if device is None:
            return not_found_response()
        return Response(DeviceOutputSerializer(device).data)

    @extend_schema(operation_id="recipients_devices_destroy", responses={204: None})
    def delete(self, request, external_id: str, device_id: str):
        device = self._device(request, external_id, device_id)
        if device is None:
            return not_found_response()
        device_delete(device=device)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreferencesView(APIView):
    """``/api/v1/recipients/{external_id}/preferences/``: GET the document, PUT merges a partial one."""

    required_scopes = {"GET": READ, "HEAD": READ, "PUT": WRITE}

    @extend_schema(operation_id="recipients_preferences_retrieve", responses={200: PreferencesOutputSerializer})
    def get(self, request, external_id: str):
        recipient = recipient_get(external_id, project_id=request.auth.project_id)
        if recipient is None:
            return not_found_response()
        return Response(preferences_document(recipient))

    @extend_schema(operation_id="recipients_preferences_update", request=PreferencesInputSerializer,
                   responses={200: PreferencesOutputSerializer})
    def put(self, request, external_id: str):
        recipient = recipient_get(external_id, project_id=request.auth.project_id)
        if recipient is None:
            return not_found_response()
        serializer = PreferencesInputSerializer(data=request.data, context={"project_id": recipient.project_id})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        quiet = data.get("quiet_hours")
        preferences_update(
            recipient=recipient, channels=data.get("channels"), categories=data.get("categories"),
            quiet_hours=(quiet["start"], quiet["end"]) if quiet else None,
            quiet_hours_given="quiet_hours" in data, topics=data.get("topics"),
        )
        return Response(preferences_document(recipient))
