"""Notification content from templates.

Templates (per slug, channel and locale) are not part of the core pipeline
yet: any ``template`` given is unknown and answers 400.
"""
from rest_framework import serializers


def render_template(*, slug: str, channel: str, context: dict, locale: str) -> dict:
    raise serializers.ValidationError({"template": [f"Unknown template {slug!r} for channel {channel!r}."]})
