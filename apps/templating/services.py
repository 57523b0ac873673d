"""Finding, compiling and rendering templates.

Compiled templates are cached per process for ``CACHE_TTL`` seconds per
(slug, channel); an edit saved in this process clears the cache at once.
Both caches are bounded: slugs come from clients, so the (slug, channel) pairs
that have no template are kept apart, at most ``MAX_MISSING`` of them, and a
stream of unknown slugs neither grows the process nor pushes the known
templates (at most ``MAX_FOUND`` pairs) out of their cache.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from notifier.headers import one_line
from notifier.lru import BoundedTTLCache
from notifier.rendering import CompiledPart, TemplateError, UndefinedVariable, compile_part, render_part
from notifier.sms import sms_info

from .locales import fallback_chain, normalize_locale
from .models import ALL_PARTS, Template

CACHE_TTL = 10.0
MAX_FOUND = 2048  # (slug, channel) pairs with at least one template
MAX_MISSING = 1024  # (slug, channel) pairs without: client-chosen, so kept apart and bounded
_found: BoundedTTLCache[tuple[str, str], dict[str, "CompiledTemplate"]] = BoundedTTLCache(MAX_FOUND, CACHE_TTL)
_missing: BoundedTTLCache[tuple[str, str], bool] = BoundedTTLCache(MAX_MISSING, CACHE_TTL)


class RenderError(Exception):
    """Rendering failed; ``field`` is ``template`` (the template is broken) or ``context`` (bad input)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class CompiledTemplate:
    slug: str
    channel: str
    locale: str
    parts: dict[str, CompiledPart] = field(default_factory=dict)
    broken: bool = False  # saved with a syntax error (e.g. edited outside the admin)


def template_compile(template: Template) -> CompiledTemplate:
    """Compile every non-empty part; a syntax error is a ValidationError on that part's field."""
    compiled = CompiledTemplate(slug=template.slug, channel=template.channel, locale=template.locale)
    errors: dict[str, list[str]] = {}
    for name in ALL_PARTS:
        source = getattr(template, name) or ""
        if not source:
            continue
        try:
            compiled.parts[name] = compile_part(source, html=(name == "html"))
        except TemplateError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    return compiled


def clear_cache() -> None:
    _found.clear()
    _missing.clear()


def _variants(slug: str, channel: str) -> dict[str, CompiledTemplate]:
    key = (slug, channel)
    hit = _found.get(key)
    if hit is not None:
        return hit
    if key in _missing:
        return {}
    variants: dict[str, CompiledTemplate] = {}
    for template in Template.objects.filter(slug=slug, channel=channel):
        locale = normalize_locale(template.locale)  # also for rows saved without the admin's clean()
        try:
            variants[locale] = template_compile(template)
        except ValidationError:
            variants[locale] = CompiledTemplate(slug, channel, locale, broken=True)
    if variants:
        _found.set(key, variants)
    else:
        _missing.set(key, True)
    return variants


def template_find(*, slug: str, channel: str, locale: str) -> CompiledTemplate | None:
    """The template for ``locale`` or its nearest fallback (``pt-BR`` → ``pt`` → default)."""
    variants = _variants(slug, channel)
    for candidate in fallback_chain(locale):
        if candidate in variants:
            return variants[candidate]
    return None



def template_render(compiled: CompiledTemplate, context: dict[str, Any]) -> dict[str, Any]:
    """Notification content rendered from ``compiled`` with ``context``; raises RenderError."""
    if compiled.broken:
        raise RenderError("template", f"Template {compiled.slug!r} ({compiled.channel}, "
                                      f"{compiled.locale or 'default'}) does not compile; fix it in the admin.")
    content: dict[str, Any] = {}
    for name, part in compiled.parts.items():
        try:
            text = render_part(part, context)
        except UndefinedVariable as exc:
            raise RenderError("context", f"Missing variable '{exc.name}' used by template {compiled.slug!r}.") from exc
        except TemplateError as exc:
            raise RenderError("context", f"Template {compiled.slug!r}: {exc}") from exc
        # Subjects and titles on one line: every control character (line breaks of any kind, tabs, C0
        # and C1 controls), from the template or a context value, becomes a space (notifier.headers).
        content[name] = one_line(text) if name in ("subject", "title") else text
    if compiled.channel == "sms":
        content["sms"] = sms_info(content.get("body", "")).as_dict()
    return content


def template_preview(template: Template, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render a (possibly unsaved) template for the admin: ``{"content": ...}`` or ``{"error": ...}``."""
    try:
        compiled = template_compile(template)
    except ValidationError as exc:
        return {"error": "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())}
    try:
        return {"content": template_render(compiled, template.sample_context if context is None else context)}
    except RenderError as exc:
        return {"error": exc.message}
