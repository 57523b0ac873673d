"""The answer to a broadcast request: ``POST /api/v1/notifications/{channel}/`` with ``topic`` (its view
calls this once the request is validated)."""
from rest_framework import status
from rest_framework.response import Response

from ..services import broadcast_accept
from .serializers import BroadcastAcceptedSerializer


def broadcast_accepted(*, spec, data, api_key) -> Response:
    """Create the broadcast of a validated request that named a topic, and answer its 202."""
    broadcast = broadcast_accept(spec=spec, data=data, api_key=api_key)
    return Response(BroadcastAcceptedSerializer(broadcast).data, status=status.HTTP_202_ACCEPTED,
                    headers={"Location": broadcast.status_url})
