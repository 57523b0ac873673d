"""The fast path: validating many notifications cheaply and creating a batch in one transaction.

``ItemValidator`` gives exactly the result of ``NotificationInputSerializer``
(the same ``NotificationSpec``, the same error dictionaries) for one item, but
skips DRF's per-field machinery for plain inputs: strings and choices are
checked inline, every other field runs its own DRF validation, and the
serializer's ``validate()`` builds the spec as usual. Any input the inline
checks do not accept is handed to the full serializer, so error messages come
from DRF itself. One validator (one serializer instance, its fields built once)
serves every item of a channel.
"""
from __future__ import annotations

import json
import threading
from typing import Any

from django.core import validators as django_validators
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import SkipField, _UnvalidatedField, empty
from rest_framework.serializers import as_serializer_error
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from ..specs import NotificationSpec
from .validation import MAX_JSON_DEPTH, JSONObjectField, NotificationInputSerializer, StrictCharField, json_depth

_BAD = object()
_PLAIN_CHAR_VALIDATORS = (
    django_validators.MaxLengthValidator, django_validators.MinLengthValidator,
    django_validators.ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator,
)


def _lean_char(field: serializers.CharField):
    max_length, min_length, trim = field.max_length, field.min_length, field.trim_whitespace

    def check(value):
        if type(value) is not str:
            return _BAD
        if trim:
            value = value.strip()
        if not value or (max_length is not None and len(value) > max_length) or \
                (min_length is not None and len(value) < min_length) or "\x00" in value:
            return _BAD
        if not value.isascii():
            try:
                value.encode("utf-8")  # lone surrogates do not encode
            except UnicodeEncodeError:
                return _BAD
        return value

    return check


def _lean_choice(field: serializers.ChoiceField):
    choices = field.choice_strings_to_values

    def check(value):
        if type(value) is str and value in choices:
            return choices[value]
        return _BAD

    return check


def _flat_json_size_bound(value: dict) -> int | None:
    """An upper bound of ``len(json.dumps(value))`` for a flat object (string keys; string, small
    integer, boolean or null values), or None for any other object. Metadata is mostly such a
    handful of tags: bounding it is cheaper than encoding it, and its depth is 1."""
    size = 2
    for key, item in value.items():
        if type(key) is not str:
            return None
        kind = type(item)
        if kind is str:
            # ensure_ascii: at most 6 characters per ASCII character (\u001f), 12 per other code point
            size += (6 if item.isascii() else 12) * len(item) + 2
        elif kind is int:
            if item.bit_length() > 63:
                return None
            size += 20
        elif kind is bool or item is None:
            size += 5
        else:
            return None
        size += (6 if key.isascii() else 12) * len(key) + 6  # quotes, ": " and ", "
    return size


def _lean_json_object(field: JSONObjectField):
    max_bytes = field.max_bytes

    def check(value):
        if type(value) is not dict:
            return _BAD
        bound = _flat_json_size_bound(value)
        if bound is not None and bound <= max_bytes:
            return dict(value)  # valid JSON of depth 1 within the limit: no need to encode it
        try:
            size = len(json.dumps(value))
        except (TypeError, ValueError):
            return _BAD
        if size > max_bytes or json_depth(value) > MAX_JSON_DEPTH:
            return _BAD
        return dict(value)  # DictField copies; its child field accepts any value

    return check


def _lean_check(serializer: serializers.Serializer, field: serializers.Field):
    """An inline check equivalent to ``field.run_validation`` for valid input, or None."""
    if getattr(serializer, f"validate_{field.field_name}", None) is not None:
        return None
    # StrictCharField only adds "a str, not coerced", which the inline check demands too.
    if type(field) in (serializers.CharField, StrictCharField) and \
            all(isinstance(v, _PLAIN_CHAR_VALIDATORS) for v in field.validators):
        return _lean_char(field)
    if type(field) is serializers.ChoiceField and not field.validators:
        return _lean_choice(field)
    if type(field) is JSONObjectField and type(field.child) is _UnvalidatedField and field.allow_empty \
            and not field.validators and not field.allow_null:
        return _lean_json_object(field)
    return None


class ItemValidator:
    """Validates items for one channel like ``NotificationInputSerializer(context={"channel": ...})``."""

    def __init__(self, channel: str):
        self.channel = channel
        self.serializer = NotificationInputSerializer(context={"channel": channel})
        self.has_validators = bool(self.serializer.validators)
        self.plan: dict[str, tuple] | None = {}
        self.defaults: list[tuple[str, serializers.Field]] = []  # fields with a default, filled when absent
        self.required: frozenset[str] = frozenset()
        for field in self.serializer._writable_fields:
            if field.source_attrs != [field.field_name]:
                self.plan = None  # nested sources: always the full serializer
                break
            name = field.field_name
            validate_method = getattr(self.serializer, f"validate_{name}", None)
            self.plan[name] = (field, _lean_check(self.serializer, field), validate_method)
            if field.required:
                self.required |= {name}
            elif field.default is not empty:
                self.defaults.append((name, field))

    def set_context(self, **context) -> None:
        self.serializer._context = {**context, "channel": self.channel}

    def validate(self, item: Any) -> NotificationSpec:
        """The spec for ``item``; raises DRF ``ValidationError`` with the serializer's error dict."""
        if self.plan is None or type(item) is not dict:
            return self._full(item)
        attrs: dict[str, Any] = {}
        plan = self.plan
        # The item's keys, not every field: an item names a handful of the serializer's fields.
        # Keys that are not fields are ignored, as DRF ignores them.
        for name, value in item.items():
            entry = plan.get(name)
            if entry is None:
                continue
            field, lean, validate_method = entry
            if lean is not None:
                value = lean(value)
                if value is _BAD:
                    return self._full(item)
            else:
                try:
                    value = field.run_validation(value)
                    if validate_method is not None:
                        value = validate_method(value)
                except (serializers.ValidationError, DjangoValidationError, SkipField):
                    return self._full(item)
            attrs[name] = value
        if self.required and not self.required <= attrs.keys():
            return self._full(item)
        for name, field in self.defaults:
            if name not in attrs:
                attrs[name] = field.get_default()
        serializer = self.serializer
        try:
            if self.has_validators:  # else run_validators() only builds read-only defaults to check nothing
                serializer.run_validators(attrs)
            return serializer.validate(attrs)
        except (serializers.ValidationError, DjangoValidationError) as exc:
            raise serializers.ValidationError(detail=as_serializer_error(exc)) from exc

    def _full(self, item: Any) -> NotificationSpec:
        """Exactly the serializer's answer (a fresh instance; only for invalid or unusual items)."""
        serializer = NotificationInputSerializer(data=item, context=self.serializer._context)
        if not serializer.is_valid():
            raise serializers.ValidationError(serializer.errors)
        return serializer.validated_data


_local = threading.local()


def item_validator(channel: str, **context) -> ItemValidator:
    """This thread's validator for ``channel`` (built once), with ``context`` set."""
    cache = getattr(_local, "validators", None)
    if cache is None:
        cache = _local.validators = {}
    validator = cache.get(channel)
    if validator is None:
        validator = cache[channel] = ItemValidator(channel)
    validator.set_context(**context)
    return validator


def validate_notification(*, channel: str, data: Any, project_id: int | None = None) -> NotificationSpec:
    """One item of ``project_id`` (the API key's project; None: the default project), as the
    single-notification endpoint receives it; raises ``ValidationError``."""
    return item_validator(channel, project_id=project_id).validate(data)


# --- recipients ------------------------------------------------------------------------

def _named_recipients(items: list) -> set[str]:
    return {item["recipient"] for item in items
            if type(item) is dict and type(item.get("recipient")) is str and item["recipient"]}


def recipients_for(items: list, project_id: int) -> dict[str, Any]:
    """Every recipient of ``project_id`` the items name, in one query; unknown ids map to None."""
    from apps.recipients.selectors import recipients_by_project

    return recipients_by_project({project_id: _named_recipients(items)}).get(project_id, {})


def recipients_for_projects(items_by_project: dict[int, list]) -> dict[int, dict[str, Any]]:
    """``recipients_for`` of the items of several projects (a group commit's requests), in one query."""
    from apps.recipients.selectors import recipients_by_project

    return recipients_by_project({p: _named_recipients(items) for p, items in items_by_project.items()})
