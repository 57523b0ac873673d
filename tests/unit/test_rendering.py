"""The sandboxed template engine (pure)."""
import pytest

from apps.templating.locales import fallback_chain, normalize_locale
from notifier.rendering import TemplateError, UndefinedVariable, compile_part, render_part, render_string


def test_html_parts_escape_the_context_and_text_parts_do_not():
    context = {"name": "<script>alert(1)</script> & co"}
    assert render_string("<p>Hi {{ name }}</p>", context, html=True) == \
        "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>"
    assert render_string("Hi {{ name }}", context) == "Hi <script>alert(1)</script> & co"


def test_a_missing_variable_is_an_error_not_an_empty_string():
    with pytest.raises(UndefinedVariable) as exc:
        render_string("Hi {{ first_name }}", {"name": "Ana"})
    assert exc.value.name == "first_name"
    with pytest.raises(UndefinedVariable):
        render_string("{{ order.total }}", {"order": {"id": 1}})


def test_a_template_may_give_a_fallback_for_an_optional_variable():
    assert render_string('Hi {{ name|default:"there" }}', {}) == "Hi there"
    assert render_string('Hi {% firstof name "there" %}', {}) == "Hi there"
    assert render_string("Hi{% if name %} {{ name }}{% endif %}", {}) == "Hi"
    assert render_string("{% for i in items %}{{ i }}{% endfor %}", {"items": [1, 2]}) == "12"


@pytest.mark.parametrize("source", [
    "{% debug %}", "{% load static %}", '{% include "base.html" %}', '{% extends "base.html" %}',
    '{% url "admin:index" %}', "{% csrf_token %}",
])
def test_tags_that_reach_outside_the_context_do_not_compile(source):
    with pytest.raises(TemplateError):
        compile_part(source)


def test_templates_see_only_the_given_context():
    part = compile_part("{{ settings.SECRET_KEY }}{{ request.user }}")
    with pytest.raises(UndefinedVariable):
        render_part(part, {})


def test_a_filter_choking_on_client_data_is_a_template_error_not_a_crash():
    with pytest.raises(TemplateError) as exc:
        render_string("{{ title|center:width }}", {"title": "Hi", "width": "wide"})
    assert not isinstance(exc.value, UndefinedVariable)


def test_a_method_that_needs_arguments_is_not_called():
    with pytest.raises(UndefinedVariable):
        render_string("{{ d.pop }}", {"d": {"a": 1}})


def test_locales_fall_back_from_region_to_language_to_default():
    assert fallback_chain("pt-BR") == ["pt-BR", "pt", ""]
    assert fallback_chain("pt_br") == ["pt-BR", "pt", ""]
    assert fallback_chain("") == [""]
    assert normalize_locale("ZH_hant_tw") == "zh-Hant-TW"


def test_rendered_output_is_plain_text_not_marked_safe_for_other_html():
    assert type(render_string("<b>{{ x }}</b>", {"x": "y"}, html=True)) is str
