"""Sandboxed rendering of notification templates with Django's template language.

A dedicated ``Engine`` with no loaders, no tag libraries to ``{% load %}``,
no context processors, and only the harmless built-in tags and filters (no
``debug``, ``url``, ``csrf_token``, ``include``, ``extends``...). Templates see
the context they are given and nothing else: no settings, no request, no
models. HTML parts are rendered with autoescaping, text parts without.

A variable the context lacks is an error (``UndefinedVariable``), not an empty
string, unless the template asks for a fallback: ``{{ name|default:"there" }}``,
``{% firstof name "there" %}`` or ``{% if name %}...{% endif %}``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.template import Context, Engine, Library, TemplateSyntaxError
from django.template import defaultfilters, defaulttags
from django.template.base import FilterExpression, VariableNode

# Tags that read outside the given context, reach the URLconf or the file system, or load libraries.
UNSAFE_TAGS = frozenset({"debug", "url", "csrf_token", "load", "querystring"})
FALLBACK_FILTERS = frozenset({"default", "default_if_none"})

register = Library()
register.tags.update({name: tag for name, tag in defaulttags.register.tags.items() if name not in UNSAFE_TAGS})
register.filters.update(defaultfilters.register.filters)


class TemplateError(Exception):
    """A template that does not compile or cannot be rendered with the given context."""


class UndefinedVariable(TemplateError):
    def __init__(self, name: str):
        super().__init__(f"Undefined variable '{name}'.")
        self.name = name


class _Undefined(str):
    """``string_if_invalid`` that raises instead of rendering an empty string.

    Django formats ``string_if_invalid % variable`` when it contains ``%s``;
    the ``%`` raises with the variable's name.
    """

    def __new__(cls):
        return super().__new__(cls, "%s")

    def __mod__(self, variable):
        raise UndefinedVariable(str(variable))

    def __str__(self):  # a method that needs arguments, e.g. {{ items.pop }}
        raise UndefinedVariable("(a method that takes arguments)")

    def __html__(self):
        raise UndefinedVariable("(a method that takes arguments)")


class _FallbackFilterExpression(FilterExpression):
    """``{{ x|default:"..." }}``: a missing ``x`` resolves to None so the fallback filter applies."""

    __slots__ = ()

    def resolve(self, context, ignore_failures=False):
        return super().resolve(context, ignore_failures=True)


class SandboxEngine(Engine):
    default_builtins = [__name__]


ENGINE = SandboxEngine(loaders=[], libraries={}, string_if_invalid=_Undefined(), debug=False, autoescape=True)


@dataclass(frozen=True)
class CompiledPart:
    source: str
    template: Any
    html: bool


def compile_part(source: str, *, html: bool = False) -> CompiledPart:
    """Compile one template part; raises TemplateError with a readable message."""
    try:
        template = ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Template syntax error: {exc}") from exc
    for node in template.nodelist.get_nodes_by_type(VariableNode):
        expression = node.filter_expression
        if expression.filters and getattr(expression.filters[0][0], "__name__", "") in FALLBACK_FILTERS:
            expression.__class__ = _FallbackFilterExpression
    return CompiledPart(source=source, template=template, html=html)


def render_part(part: CompiledPart, context: dict[str, Any]) -> str:
    """Render with only ``context``; raises UndefinedVariable or TemplateError."""
    try:
        rendered = part.template.render(Context(dict(context), autoescape=part.html))
    except TemplateError:
        raise
    except Exception as exc:  # noqa: BLE001 - a filter choking on the client's data is bad input, not a 500
        raise TemplateError(f"Could not render the template: {exc}") from exc
    # A plain str: Django marks rendered output "safe", which must not leak into other HTML unescaped.
    return str.__str__(rendered)


def render_string(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    return render_part(compile_part(source, html=html), context)
