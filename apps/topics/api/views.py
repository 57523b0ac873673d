"""/api/v1/topics/: topics and their subscribers. Thin views: logic in services and selectors.

Every topic belongs to the key's project: a key sees and changes only its own project's topics (another
project's key is not found: 404) and subscribes only its project's recipients. Reads take
``recipients:read``, writes ``recipients:write``, as for recipients.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.errors import not_found_response
from apps.api.pagination import CheckedCursorPagination

from ..models import KEY_MAX_LENGTH, KEY_MESSAGE, validate_topic_key
from ..selectors import topic_get, topic_subscriber_count, topic_subscribers, topics_of_project
from ..services import TopicGone, topic_delete, topic_subscribe, topic_unsubscribe, topic_upsert
from .serializers import (
    SubscribedSerializer,
    SubscriberListSerializer,
    SubscriberSerializer,
    SubscribersInputSerializer,
    TopicDetailSerializer,
    TopicInputSerializer,
    TopicListSerializer,
    TopicOutputSerializer,
    UnsubscribedSerializer,
)

READ, WRITE = "recipients:read", "recipients:write"
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The `next` link's cursor."),
    OpenApiParameter("page_size", int, description="Items per page (default 50)."),
]


class TopicPagination(CheckedCursorPagination):
    ordering = "key"


class SubscriberPagination(CheckedCursorPagination):
    ordering = "recipient_id"
    max_page_size = 1000


def _key_error(key: str) -> Response | None:
    if len(key) > KEY_MAX_LENGTH:
        message = f"At most {KEY_MAX_LENGTH} characters."
    else:
        try:
            validate_topic_key(key)
            return None
        except DjangoValidationError:
            message = KEY_MESSAGE
    return Response({"errors": {"key": [message]}}, status=status.HTTP_400_BAD_REQUEST)


def _detail(topic) -> dict:
    topic.subscriber_count = topic_subscriber_count(topic=topic)
    return TopicDetailSerializer(topic).data


class TopicListView(APIView):
    """``/api/v1/topics/``: the project's topics, by key."""

    required_scopes = {"GET": READ, "HEAD": READ}

    @extend_schema(operation_id="topics_list", parameters=PAGE_PARAMETERS, responses={200: TopicListSerializer})
    def get(self, request):
        paginator = TopicPagination()
        page = paginator.paginate_queryset(topics_of_project(project_id=request.auth.project_id), request, view=self)
        return paginator.get_paginated_response(TopicOutputSerializer(page, many=True).data)


class TopicView(APIView):
    """``/api/v1/topics/{key}/``: PUT upserts, GET reads (with the subscriber count), DELETE deletes the topic
    and its subscriptions."""

    required_scopes = {"GET": READ, "HEAD": READ, "PUT": WRITE, "DELETE": WRITE}

    @extend_schema(operation_id="topics_retrieve", responses={200: TopicDetailSerializer})
    def get(self, request, key: str):
        topic = topic_get(key, project_id=request.auth.project_id)
        if topic is None:
            return not_found_response()
        return Response(_detail(topic))

    @extend_schema(operation_id="topics_upsert", request=TopicInputSerializer,
                   responses={200: TopicDetailSerializer, 201: TopicDetailSerializer})
    def put(self, request, key: str):
        error = _key_error(key)
        if error is not None:
            return error
        serializer = TopicInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = request.data.get("key")
        if given is not None and given != key:
            return Response({"errors": {"key": ["Does not match the URL."]}}, status=status.HTTP_400_BAD_REQUEST)
        topic, created = topic_upsert(project_id=request.auth.project_id, key=key, data=serializer.validated_data)
        if created:
            topic.subscriber_count = 0
            return Response(TopicDetailSerializer(topic).data, status=status.HTTP_201_CREATED,
                            headers={"Location": f"/api/v1/topics/{key}/"})
        return Response(_detail(topic))

    @extend_schema(operation_id="topics_destroy", responses={204: None})
    def delete(self, request, key: str):
        topic = topic_get(key, project_id=request.auth.project_id)
        if topic is None:
            return not_found_response()
        topic_delete(topic=topic)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _DeleteWithBodySchema(AutoSchema):
    """drf-spectacular documents request bodies of POST, PUT and PATCH only; ``DELETE …/subscribers/``
    takes the same body as its POST."""

    def _get_request_body(self, direction="request"):
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"


SUBSCRIBE_EXAMPLE = OpenApiExample("Subscribe", value={"recipients": ["user-1", "user-2"]}, request_only=True)


class TopicSubscribersView(APIView):
    """``/api/v1/topics/{key}/subscribers/``: POST subscribes up to 10,000 recipients, DELETE unsubscribes
    them, GET lists the subscribers."""

    required_scopes = {"GET": READ, "HEAD": READ, "POST": WRITE, "DELETE": WRITE}
    schema = _DeleteWithBodySchema()

    def _input(self, request):
        serializer = SubscribersInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["recipients"]

    @extend_schema(operation_id="topics_subscribers_list", parameters=PAGE_PARAMETERS,
                   responses={200: SubscriberListSerializer})
    def get(self, request, key: str):
        topic = topic_get(key, project_id=request.auth.project_id)
        if topic is None:
            return not_found_response()
        paginator = SubscriberPagination()
        page = paginator.paginate_queryset(topic_subscribers(topic=topic), request, view=self)
        return paginator.get_paginated_response(SubscriberSerializer(page, many=True).data)

    @extend_schema(operation_id="topics_subscribers_add", request=SubscribersInputSerializer,
                   responses={200: SubscribedSerializer}, examples=[SUBSCRIBE_EXAMPLE])
    def post(self, request, key: str):
        topic = topic_get(key, project_id=request.auth.project_id)
        if topic is None:
            return not_found_response()
        external_ids = self._input(request)
        try:
            result = topic_subscribe(topic=topic, external_ids=external_ids)
        except TopicGone:
            return not_found_response()
        return Response({"subscribed": result.subscribed, "already": result.already,
                         "unknown": result.unknown, "unknown_count": result.unknown_count})

    @extend_schema(operation_id="topics_subscribers_remove", request=SubscribersInputSerializer,
                   responses={200: UnsubscribedSerializer}, examples=[SUBSCRIBE_EXAMPLE])
    def delete(self, request, key: str):
        topic = topic_get(key, project_id=request.auth.project_id)
        if topic is None:
            return not_found_response()
        result = topic_unsubscribe(topic=topic, external_ids=self._input(request))
        return Response({"removed": result.removed, "unknown": result.unknown, "unknown_count": result.unknown_count})
