"""Input validation and output shapes for the recipients API."""
from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from rest_framework import serializers

from apps.notifications.models import API_CHANNELS, Category
from apps.notifications.intake.validation import E164_MESSAGE
from apps.templating.locales import is_valid_locale, normalize_locale
from notifier.addresses import is_e164
from notifier.headers import UNSAFE as HEADER_UNSAFE
from notifier.netguard import UnsafeURL, validate_push_endpoint
from notifier.quiet_hours import is_known_timezone

from ..models import Device, Recipient

_CHANNELS = [c.value for c in API_CHANNELS]


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (a typo is a 400, not silently ignored)."""

    ignored_fields: tuple[str, ...] = ()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields) - set(self.ignored_fields)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        return super().to_internal_value(data)


class RecipientInputSerializer(StrictSerializer):
    """PUT body: every field optional; a given field replaces the stored value ("" or null clears it)."""

    ignored_fields = ("external_id", "created_at", "updated_at")  # read-only fields of the answer

    email = serializers.CharField(max_length=254, required=False, allow_blank=True, allow_null=True)
    phone = serializers.CharField(max_length=16, required=False, allow_blank=True, allow_null=True,
                                  help_text="E.164, e.g. +12025550123.")
    timezone = serializers.CharField(max_length=64, required=False, allow_null=True,
                                     help_text="IANA time zone, e.g. America/New_York (default UTC).")
    locale = serializers.CharField(max_length=35, required=False, allow_blank=True, allow_null=True,
                                   help_text="e.g. pt-BR; picks template translations.")
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, allow_null=True)

    def validate_email(self, value):
        if value:
            try:
                validate_email(value)
                if HEADER_UNSAFE.search(value):  # a quoted local part may hold U+000B, U+001F...
                    raise DjangoValidationError("control character")
            except DjangoValidationError as exc:
                raise serializers.ValidationError("Enter a valid email address.") from exc
        return value or ""

    def validate_phone(self, value):
        if value and not is_e164(value):
            raise serializers.ValidationError(E164_MESSAGE)
        return value or ""

    def validate_timezone(self, value):
        if value is None:
            return "UTC"
        if not is_known_timezone(value):
            raise serializers.ValidationError(f"Unknown time zone {value!r}; use an IANA name such as "
                                              "America/New_York.")
        return value

    def validate_locale(self, value):
        if value and not is_valid_locale(value):
            raise serializers.ValidationError("Enter a locale tag such as pt-BR, pt or en.")
        return normalize_locale(value or "")

    def validate_name(self, value):
        return value or ""


class RecipientOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Recipient
        fields = ("external_id", "email", "phone", "timezone", "locale", "name", "created_at", "updated_at")


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def validate_web_subscription(token) -> str:
    """A Push API subscription (object or its JSON text) → canonical JSON text; raises ValidationError.

    The endpoint is where the workers will POST: https, and its host must resolve to public
    addresses only (``notifier.netguard``; ``NOTIFIER_PUSH_ALLOW_PRIVATE`` lifts that for tests).
    """
    if isinstance(token, str):
        try:
            token = json.loads(token)
        except ValueError as exc:
            raise serializers.ValidationError("For web, the token is the Push API subscription JSON.") from exc
    if not isinstance(token, dict):
        raise serializers.ValidationError("For web, the token is the Push API subscription JSON object.")
    errors = []
    endpoint = token.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if not parts or parts.scheme not in ("https", "http") or not parts.netloc:
        errors.append("The subscription needs an 'endpoint' URL.")
    else:
        try:
            validate_push_endpoint(endpoint, allow_private=settings.NOTIFIER_PUSH_ALLOW_PRIVATE)
        except UnsafeURL as exc:
            errors.append(f"The subscription's endpoint is refused: {exc}")
    keys = token.get("keys")
    if not isinstance(keys, dict):
        errors.append("The subscription needs 'keys' with 'p256dh' and 'auth'.")
        keys = {}
    for name, length in {"p256dh": 65, "auth": 16}.items():
        value = keys.get(name)
        if not isinstance(value, str) or not value:
            errors.append(f"The subscription needs keys.{name}.")
            continue
        try:
            raw = _b64url_decode(value)
        except (binascii.Error, ValueError):
            errors.append(f"keys.{name} must be base64url.")
            continue
        if len(raw) != length or (name == "p256dh" and raw[0] != 4):
            what = "an uncompressed P-256 public key" if name == "p256dh" else "16 bytes"
            errors.append(f"keys.{name} must be {what} (base64url).")
    if errors:
        raise serializers.ValidationError(errors)
    canonical = {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}
    if token.get("expirationTime") is not None:
        canonical["expirationTime"] = token["expirationTime"]
    return json.dumps(canonical, separators=(",", ":"), sort_keys=True)


class DeviceInputSerializer(StrictSerializer):
    platform = serializers.ChoiceField(choices=Device.Platform.choices)
    token = serializers.JSONField(help_text="The FCM/APNs token; for web, the Push API subscription (object or "
                                            "JSON text) with endpoint, keys.p256dh and keys.auth.")

    def validate(self, attrs):
        token = attrs["token"]
        if attrs["platform"] == Device.Platform.WEB:
            try:
                attrs["token"] = validate_web_subscription(token)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"token": exc.detail}) from exc
            return attrs
        if not isinstance(token, str) or not token.strip():
            raise serializers.ValidationError({"token": ["Give the device's registration token as a string."]})
        if len(token) > 4096 or any(ch.isspace() for ch in token):
            raise serializers.ValidationError({"token": ["Not a valid registration token."]})
        return attrs


class DeviceOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = ("id", "platform", "token", "active", "deactivated_reason", "created_at")


class QuietHoursSerializer(StrictSerializer):
    start = serializers.TimeField(format="%H:%M", input_formats=["%H:%M"], help_text="HH:MM, local time.")
    end = serializers.TimeField(format="%H:%M", input_formats=["%H:%M"], help_text="HH:MM, local time.")

    def validate(self, attrs):
        if attrs["start"] == attrs["end"]:
            raise serializers.ValidationError({"end": ["Must differ from start."]})
        return attrs


def _bool_or_null(value, where: str, errors: list[str]):
    if value is not None and not isinstance(value, bool):
        errors.append(f"{where} must be true, false or null.")


class PreferencesInputSerializer(StrictSerializer):
    """A partial preferences document: only the keys given change; null removes a setting."""

    channels = serializers.DictField(required=False, allow_null=True, child=serializers.JSONField(allow_null=True),
                                     help_text='e.g. {"email": true, "sms": false}; null removes a setting.')
    categories = serializers.DictField(
        required=False, allow_null=True, child=serializers.JSONField(allow_null=True),
        help_text='e.g. {"marketing": {"email": false}}; null removes a setting or all of a category\'s.')
    quiet_hours = QuietHoursSerializer(required=False, allow_null=True,
                                       help_text='e.g. {"start": "22:00", "end": "07:00"}, or null for none.')
    topics = serializers.DictField(
        required=False, allow_null=True, child=serializers.JSONField(allow_null=True),
        help_text='Mute a topic per channel, e.g. {"product-updates": {"email": false}}: broadcasts to that topic '
                  'skip the channel. Keys are topics of the key\'s project; null removes a setting or all of a '
                  'topic\'s.')

    def validate_channels(self, value):
        value = value or {}
        errors: list[str] = []
        for channel, enabled in value.items():
            if channel not in _CHANNELS:
                errors.append(f"Unknown channel {channel!r} (one of {', '.join(_CHANNELS)}).")
            _bool_or_null(enabled, channel, errors)
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_categories(self, value):
        value = value or {}
        errors: list[str] = []
        known = set(Category.objects.filter(slug__in=list(value)).values_list("slug", flat=True))
        for slug, per_channel in value.items():
            if slug not in known:
                errors.append(f"Unknown category {slug!r}.")
            if per_channel is None:
                continue
            if not isinstance(per_channel, dict):
                errors.append(f"{slug} must be an object of channel: true/false, or null.")
                continue
            for channel, enabled in per_channel.items():
                if channel not in _CHANNELS:
                    errors.append(f"Unknown channel {channel!r} in {slug} (one of {', '.join(_CHANNELS)}).")
                _bool_or_null(enabled, f"{slug}.{channel}", errors)
        if errors:
            raise serializers.ValidationError(errors)
        return value


    def validate_topics(self, value):
        """Keys must be topics of the recipient's project (``context["project_id"]``)."""
        from apps.topics.selectors import topic_ids_by_key

        value = value or {}
        errors: list[str] = []
        known = topic_ids_by_key(project_id=self.context["project_id"], keys=value)
        for key, per_channel in value.items():
            if key not in known:
                errors.append(f"Unknown topic {key!r}.")
            if per_channel is None:
                continue
            if not isinstance(per_channel, dict):
                errors.append(f"{key} must be an object of channel: true/false, or null.")
                continue
            for channel, enabled in per_channel.items():
                if channel not in _CHANNELS:
                    errors.append(f"Unknown channel {channel!r} in {key} (one of {', '.join(_CHANNELS)}).")
                _bool_or_null(enabled, f"{key}.{channel}", errors)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class PreferencesOutputSerializer(serializers.Serializer):
    channels = serializers.DictField(child=serializers.BooleanField())
    categories = serializers.DictField(child=serializers.DictField(child=serializers.BooleanField()))
    quiet_hours = QuietHoursSerializer(allow_null=True)
    topics = serializers.DictField(child=serializers.DictField(child=serializers.BooleanField()),
                                   help_text="Per topic key, the channels set for it (false: muted).")
