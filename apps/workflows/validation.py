"""Input of the two workflow fields of a notification request: ``digest`` and ``fallback``.

``NotificationInputSerializer`` (apps/notifications) declares the fields with the serializers below (so
the OpenAPI schema shows them) and calls ``workflow_specs`` from its ``validate()``: the checks that need
the rest of the request (channel, recipient, schedule) add their messages to the request's errors under
``digest`` or ``fallback``.
"""
from __future__ import annotations

import time

from rest_framework import serializers

from apps.notifications.models import Channel

from .models import KEY_MAX_LENGTH, KEY_MESSAGE, KEY_PATTERN, MAX_FALLBACK_SECONDS, MAX_WINDOW_SECONDS

FALLBACK_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH)
MAX_FALLBACK_STEPS = 3


class DigestInputSerializer(serializers.Serializer):
    """``{"key", "window_seconds", "template"}``: hold this notification with the recipient's others of
    the same channel and key, and send them all as one message when the window ends."""

    key = serializers.RegexField(KEY_PATTERN, max_length=KEY_MAX_LENGTH, error_messages={"invalid": KEY_MESSAGE})
    window_seconds = serializers.IntegerField(min_value=1, max_value=MAX_WINDOW_SECONDS)
    template = serializers.SlugField(max_length=100, required=False, default="",
                                     help_text="The digest message's template; absent: a built-in summary.")


class FallbackStepSerializer(serializers.Serializer):
    """One step: send the in-app notification on ``channel`` when it is still unread ``after_seconds``
    after it reached the inbox."""

    channel = serializers.ChoiceField(choices=[c.value for c in FALLBACK_CHANNELS])
    after_seconds = serializers.IntegerField(min_value=1, max_value=MAX_FALLBACK_SECONDS)
    unless = serializers.ChoiceField(choices=["read"], required=False, default="read")


def digest_field():
    return DigestInputSerializer(required=False, allow_null=True,
                                 help_text="Hold and send as one digest message (docs/workflows.md); null: no "
                                           "digest, even if the category has one.")


def fallback_field():
    return FallbackStepSerializer(many=True, required=False, min_length=1, max_length=MAX_FALLBACK_STEPS,
                                  help_text="In-app only: send it on other channels when still unread "
                                            "(docs/workflows.md).")


# --- the categories' digests: a short per-process cache, like the categories' -----------------------

_TTL = 30.0
_category_digests: dict[str, dict] = {}
_loaded_at = 0.0


def category_digest(slug: str, *, now=time.monotonic) -> dict | None:
    """The digest spec of category ``slug``, or None; reloaded every 30 s."""
    global _loaded_at
    if now() - _loaded_at > _TTL:
        from .models import CategoryDigest

        _category_digests.clear()
        _category_digests.update({d.category.slug: d.as_spec()
                                  for d in CategoryDigest.objects.select_related("category")})
        _loaded_at = now()
    return _category_digests.get(slug)


def clear_cache() -> None:
    global _loaded_at
    _category_digests.clear()
    _loaded_at = 0.0


# --- checks that need the whole request ---------------------------------------------------------------

def workflow_specs(attrs: dict, *, channel: str, category: str | None, recipient, to: str, tokens,
                   errors: dict) -> tuple[dict | None, list[dict] | None]:
    """The request's ``(digest, fallback)`` specs; problems are added to ``errors``.

    A request's ``digest`` wins over its category's; ``"digest": null`` turns the category's off. A
    category's digest skips what it cannot hold (a scheduled send, push to device tokens)."""
    digest = attrs.get("digest")
    fallback = attrs.get("fallback") or None
    if "digest" not in attrs and category:
        inherited = category_digest(category)
        if inherited is not None and not attrs.get("scheduled_for") and not tokens and not fallback:
            digest = inherited
    elif digest is not None:
        problems = []
        if attrs.get("scheduled_for"):
            problems.append("A digest cannot be combined with scheduled_for.")
        if tokens:
            problems.append("A digest needs a 'recipient' or 'to', not device tokens.")
        if digest.get("template") and not problems:
            from apps.templating.services import template_find

            if template_find(slug=digest["template"], channel=channel, locale="") is None:
                errors.setdefault("digest", {})["template"] = [
                    f"Unknown template {digest['template']!r} for channel {channel!r}."]
        if problems:
            errors["digest"] = problems
    if fallback is not None:
        problems = _fallback_problems(fallback, channel=channel, recipient=recipient, digest=digest)
        if problems:
            errors["fallback"] = problems
    return (dict(digest) if digest else None), ([dict(step) for step in fallback] if fallback else None)


def _fallback_problems(steps: list[dict], *, channel: str, recipient, digest) -> list[str]:
    if channel != Channel.IN_APP:
        return ["Only in-app notifications take a fallback."]
    if digest is not None:
        return ["A fallback cannot be combined with a digest."]
    problems = []
    seen = set()
    for number, step in enumerate(steps, start=1):
        step_channel = step["channel"]
        if step_channel in seen:
            problems.append(f"Step {number}: {step_channel} is already a step.")
        seen.add(step_channel)
        if recipient is not None:
            if step_channel == Channel.EMAIL and not recipient.email:
                problems.append(f"Step {number}: this recipient has no email address.")
            elif step_channel == Channel.SMS and not recipient.phone:
                problems.append(f"Step {number}: this recipient has no phone number.")
    return problems
