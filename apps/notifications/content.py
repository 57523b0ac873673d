"""Notification content from templates (apps.templating), for input validation."""
from rest_framework import serializers


def render_template(*, slug: str, channel: str, context: dict, locale: str) -> dict:
    """Content for ``slug`` on ``channel`` in ``locale`` (or its fallback), rendered with ``context``.

    Raises DRF ``ValidationError`` under ``template`` (unknown or broken
    template) or ``context`` (a variable the template uses is missing).
    """
    from apps.templating.services import RenderError, template_find, template_render

    compiled = template_find(slug=slug, channel=channel, locale=locale or "")
    if compiled is None:
        raise serializers.ValidationError({"template": [f"Unknown template {slug!r} for channel {channel!r}."]})
    try:
        return template_render(compiled, context or {})
    except RenderError as exc:
        raise serializers.ValidationError({exc.field: [exc.message]}) from exc
