"""Input validation shared by the single and batch endpoints.

Produces ``NotificationSpec`` objects; invalid input raises DRF's
``ValidationError`` with per-field messages (addresses under ``to``).
"""
from __future__ import annotations

import json
from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from notifier.addresses import is_e164, validate_email
from notifier.headers import MESSAGE as HEADER_UNSAFE_MESSAGE
from notifier.headers import UNSAFE as HEADER_UNSAFE
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from apps.workflows.validation import digest_field, fallback_field, workflow_specs  # workflows (apps.workflows)
from notifier.sms import sms_info

from ..categories import category_get
from ..models import Channel, Priority
from ..specs import NotificationSpec

E164_MESSAGE = "Enter a phone number in E.164 format, e.g. +12025550123."
MAX_METADATA_BYTES = 16 * 1024
MAX_JSON_DEPTH = 8
CONTENT_LIMITS = {"subject": 998, "title": 255, "body": 100_000, "html": 500_000}
SMS_MAX_CHARS = 1600
# At most this many segments per SMS (carriers and Twilio concatenate up to 10 reliably).
SMS_MAX_SEGMENTS = 10
# The batch endpoint accepts at most this many items per request.
MAX_BATCH_ITEMS = 1000


def json_depth(value, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a JSON value (iterative; stops counting past ``limit``)."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an explicit offset; naive times are refused."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = None
            try:
                parsed = parse_datetime(value)
            except ValueError:
                pass
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("invalid", format="ISO 8601 with a UTC offset, e.g. 2026-01-31T09:00:00+00:00")
        return super().to_internal_value(value)


class JSONObjectField(serializers.DictField):
    """A JSON object of bounded size and depth."""

    def __init__(self, *, max_bytes: int = MAX_METADATA_BYTES, **kwargs):
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            size = len(json.dumps(value))
        except (TypeError, ValueError) as exc:
            raise serializers.ValidationError("Must be a JSON object.") from exc
        if size > self.max_bytes:
            raise serializers.ValidationError(f"At most {self.max_bytes} bytes of JSON.")
        if json_depth(value) > MAX_JSON_DEPTH:
            raise serializers.ValidationError(f"At most {MAX_JSON_DEPTH} levels of nesting.")
        return value


class StrictCharField(serializers.CharField):
    """A JSON string: numbers, booleans, objects and lists are refused, not coerced."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _text(max_length: int, **kwargs) -> serializers.CharField:
    return StrictCharField(max_length=max_length, required=False, trim_whitespace=False, **kwargs)


class NotificationInputSerializer(serializers.Serializer):
    """Fields common to every channel; ``context["channel"]`` selects the channel rules,
    ``context["project_id"]`` the owner (whose recipients ``recipient`` names)."""

    recipient = _text(255)
    to = _text(320)
    device_tokens = serializers.ListField(child=StrictCharField(max_length=4096), required=False,
                                          min_length=1, max_length=100)
    category = StrictCharField(max_length=64, required=False, default="transactional")
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    template = _text(100)
    context = JSONObjectField(required=False, max_bytes=64 * 1024)
    locale = StrictCharField(max_length=35, required=False)
    subject = _text(CONTENT_LIMITS["subject"])
    body = _text(CONTENT_LIMITS["body"])
    html = _text(CONTENT_LIMITS["html"])
    title = _text(CONTENT_LIMITS["title"])
    data = JSONObjectField(required=False, max_bytes=4 * 1024)
    scheduled_for = AwareDateTimeField(required=False, allow_null=True)
    expires_at = AwareDateTimeField(required=False, allow_null=True)
    ttl_seconds = serializers.IntegerField(required=False, min_value=1, max_value=30 * 86400)
    metadata = JSONObjectField(required=False)
    group_key = _text(255)
    topic = _text(100)  # a broadcast to the topic's subscribers (apps.broadcasts) instead of recipient/to
    digest = digest_field()  # workflows (apps.workflows): digests
    fallback = fallback_field()  # workflows (apps.workflows): channel fallback

    REQUIRED_CONTENT = {
        Channel.EMAIL: ("subject", "body"),
        Channel.SMS: ("body",),
        Channel.PUSH: ("title", "body"),
        Channel.IN_APP: ("title", "body"),
    }
    ALLOWED_CONTENT = {
        Channel.EMAIL: ("subject", "body", "html"),
        Channel.SMS: ("body",),
        Channel.PUSH: ("title", "body", "data"),
        Channel.IN_APP: ("title", "body", "data"),
    }

    def validate(self, attrs):
        context = self.context  # a property that walks to the root serializer: read it once per item
        channel = context["channel"]
        errors: dict[str, list[str]] = {}
        spec_kwargs = {}

        # --- category & priority
        category = category_get(attrs.get("category") or "transactional")
        if category is None:
            errors["category"] = [f"Unknown category {attrs.get('category')!r}."]
        priority = attrs.get("priority") or (category.default_priority if category else Priority.NORMAL)

        # --- recipient / address
        recipient = None
        to = attrs.get("to", "")
        tokens = attrs.get("device_tokens")
        external_id = attrs.get("recipient")
        given = [name for name in ("recipient", "to", "device_tokens", "topic") if attrs.get(name)]
        topic = None
        if channel != Channel.PUSH and tokens:
            errors["device_tokens"] = ["Only push notifications take device_tokens."]
        if len(given) != 1:
            if not given:
                errors["to"] = ["Give either 'recipient' or 'to'" + (" or 'device_tokens'." if channel == Channel.PUSH else ".")]
            else:
                errors.setdefault("to", []).append(f"Give only one of {', '.join(given)}.")
        elif attrs.get("topic"):
            from apps.topics.selectors import topic_get

            from apps.apikeys.models import default_project_id

            topic = topic_get(attrs["topic"], project_id=context.get("project_id") or default_project_id())
            if topic is None:
                errors["topic"] = [f"Unknown topic {attrs['topic']!r}."]
        elif external_id is not None:
            recipient = self._recipient(external_id, context)
            if recipient is None:
                errors["recipient"] = [f"Unknown recipient {external_id!r}."]
            elif channel == Channel.EMAIL and not recipient.email:
                errors["recipient"] = ["This recipient has no email address."]
            elif channel == Channel.SMS and not recipient.phone:
                errors["recipient"] = ["This recipient has no phone number."]
        elif to:
            if channel == Channel.EMAIL:
                try:
                    validate_email(to)
                    if HEADER_UNSAFE.search(to):  # a quoted local part may hold U+000B, U+001F...
                        raise DjangoValidationError("control character")
                except DjangoValidationError:
                    errors["to"] = ["Enter a valid email address."]
            elif channel == Channel.SMS:
                if not is_e164(to):
                    errors["to"] = [E164_MESSAGE]
            elif channel == Channel.PUSH:
                tokens = [to]
                to = ""
            else:
                errors["to"] = ["In-app notifications go to a 'recipient' (its inbox), not an address."]

        # --- content
        content: dict = {}
        template = attrs.get("template", "")
        if template:
            from ..content import render_template

            try:
                content = render_template(
                    slug=template, channel=channel, context=attrs.get("context") or {},
                    locale=attrs.get("locale") or (recipient.locale if recipient else ""),
                )
            except serializers.ValidationError as exc:
                errors.update(exc.detail if isinstance(exc.detail, dict) else {"template": exc.detail})
        else:
            for name in self.REQUIRED_CONTENT[channel]:
                if not attrs.get(name):
                    errors[name] = ["This field is required." if name not in attrs else "This field may not be blank."]
            for name in self.ALLOWED_CONTENT[channel]:
                if name in attrs:
                    content[name] = attrs[name]
            disallowed = [n for n in ("subject", "html", "title", "data")
                          if n in attrs and n not in self.ALLOWED_CONTENT[channel]]
            for name in disallowed:
                errors[name] = [f"Not used by {channel} notifications."]
            # The subject becomes a mail header: no control characters (notifier.headers). Rendered
            # subjects are made one line by the templating instead.
            if channel == Channel.EMAIL and HEADER_UNSAFE.search(content.get("subject", "")):
                errors["subject"] = [HEADER_UNSAFE_MESSAGE]
        if channel == Channel.SMS and content.get("body"):
            sms_body = content["body"]
            info = sms_info(sms_body)
            if len(sms_body) > SMS_MAX_CHARS:
                errors["body"] = [f"SMS bodies are limited to {SMS_MAX_CHARS} characters."]
            elif info.segments > SMS_MAX_SEGMENTS:
                errors["body"] = [f"SMS bodies are limited to {SMS_MAX_SEGMENTS} segments "
                                  f"({info.segments} needed as {info.encoding})."]
            if "sms" not in content:
                content["sms"] = info.as_dict()  # encoding and segment count (templates add it)
        if template and "data" in attrs and channel in (Channel.PUSH, Channel.IN_APP):
            content["data"] = attrs["data"]
        if tokens:
            content["device_tokens"] = list(tokens)
            from notifier.addresses import web_push_token_errors

            token_errors = web_push_token_errors(tokens)
            if token_errors:
                errors["device_tokens" if attrs.get("device_tokens") else "to"] = token_errors

        # --- time (the clock is read only when an expiry is given: most notifications have none)
        expires_at = attrs.get("expires_at")
        if expires_at and attrs.get("ttl_seconds"):
            errors["ttl_seconds"] = ["Give either expires_at or ttl_seconds, not both."]
        elif attrs.get("ttl_seconds"):
            expires_at = timezone.now() + timedelta(seconds=attrs["ttl_seconds"])
        if expires_at and expires_at <= timezone.now():
            errors["expires_at"] = ["Must be in the future."]
        scheduled_for = attrs.get("scheduled_for")
        if scheduled_for and expires_at and expires_at <= scheduled_for:
            errors["expires_at"] = ["Must be after scheduled_for."]
        # --- workflows (apps.workflows): digest and fallback specs, their errors under "digest"/"fallback"
        digest = fallback = None
        if topic is not None or attrs.get("topic"):  # a broadcast: each subscriber's notification is sent as is
            for name in ("digest", "fallback"):
                if attrs.get(name):
                    errors[name] = ["A broadcast to a topic takes no digest or fallback."]
        else:
            digest, fallback = workflow_specs(attrs, channel=channel, category=category and category.slug,
                                              recipient=recipient, to=to, tokens=tokens, errors=errors)

        if errors:
            raise serializers.ValidationError(errors)
        spec_kwargs.update(
            channel=channel, category=category.slug, priority=priority, content=content, recipient=recipient,
            to=to, template=template, locale=attrs.get("locale", ""), scheduled_for=scheduled_for,
            expires_at=expires_at, metadata=attrs.get("metadata") or {}, group_key=attrs.get("group_key", ""),
            project_id=context.get("project_id"), topic=topic, digest=digest, fallback=fallback,
        )
        return NotificationSpec(**spec_kwargs)

    def _recipient(self, external_id: str, context: dict):
        """The project's recipient (``context["project_id"]``; none: the default project's)."""
        cache = context.get("recipients")
        if cache is not None and external_id in cache:
            return cache[external_id]
        from apps.recipients.selectors import recipient_get

        return recipient_get(external_id, project_id=context.get("project_id"))
