"""Templates per slug, channel and locale, rendered at request time (real PostgreSQL)."""
import pytest
from rest_framework import status

from apps.notifications.content import render_template
from apps.notifications.models import Notification
from apps.templating.models import Template
from apps.templating.services import clear_cache

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def welcome():
    Template.objects.create(slug="welcome", channel="email", locale="", subject="Welcome, {{ name }}",
                            body="Hello {{ name }}, your plan is {{ plan }}.",
                            html="<p>Hello <b>{{ name }}</b>, your plan is {{ plan }}.</p>")
    Template.objects.create(slug="welcome", channel="email", locale="pt", subject="Bem-vindo, {{ name }}",
                            body="Olá {{ name }}, seu plano é {{ plan }}.",
                            html="<p>Olá <b>{{ name }}</b>, seu plano é {{ plan }}.</p>")
    Template.objects.create(slug="welcome", channel="sms", locale="", body="Hi {{ name }}! Plan: {{ plan }}")


def post(api, channel, **fields):
    return api.post(f"/api/v1/notifications/{channel}/", fields, format="json")


def test_pt_br_falls_back_to_pt(welcome):
    content = render_template(slug="welcome", channel="email", context={"name": "Ana", "plan": "Pro"},
                              locale="pt-BR")
    assert content["subject"] == "Bem-vindo, Ana"
    assert content["body"] == "Olá Ana, seu plano é Pro."


def test_an_unknown_locale_falls_back_to_the_default(welcome):
    content = render_template(slug="welcome", channel="email", context={"name": "Ana", "plan": "Pro"},
                              locale="de-AT")
    assert content["subject"] == "Welcome, Ana"


def test_a_region_specific_template_wins_over_the_language(welcome):
    Template.objects.create(slug="welcome", channel="email", locale="pt-BR", subject="Bem-vinda, {{ name }}",
                            body="Oi {{ name }} ({{ plan }})")
    content = render_template(slug="welcome", channel="email", context={"name": "Ana", "plan": "Pro"},
                              locale="pt_BR")
    assert content["subject"] == "Bem-vinda, Ana"


def test_the_api_renders_in_the_recipients_locale_when_none_is_given(api, welcome):
    api.put("/api/v1/recipients/ana/", {"email": "ana@example.com", "locale": "pt-BR"}, format="json")
    response = post(api, "email", recipient="ana", template="welcome", context={"name": "Ana", "plan": "Pro"})
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    content = Notification.objects.get(pk=response.json()["id"]).content
    assert content["subject"] == "Bem-vindo, Ana"
    english = post(api, "email", recipient="ana", template="welcome", locale="en",
                   context={"name": "Ana", "plan": "Pro"})
    assert Notification.objects.get(pk=english.json()["id"]).content["subject"] == "Welcome, Ana"


def test_html_escapes_the_context_and_text_parts_do_not(api, welcome):
    context = {"name": '<img src=x onerror="alert(1)">', "plan": "Gold & Silver"}
    response = post(api, "email", to="ana@example.com", template="welcome", context=context)
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    content = Notification.objects.get(pk=response.json()["id"]).content
    assert content["html"] == ("<p>Hello <b>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</b>, "
                               "your plan is Gold &amp; Silver.</p>")
    assert content["body"] == 'Hello <img src=x onerror="alert(1)">, your plan is Gold & Silver.'


def test_an_unknown_variable_is_a_400_not_an_empty_string(api, welcome):
    response = post(api, "email", to="ana@example.com", template="welcome", context={"name": "Ana"})
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert response.json()["errors"] == {"context": ["Missing variable 'plan' used by template 'welcome'."]}
    assert not Notification.objects.exists()


def test_an_unknown_template_or_one_missing_for_the_channel_is_a_400(api, welcome):
    response = post(api, "email", to="ana@example.com", template="goodbye", context={})
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "template" in response.json()["errors"]
    response = post(api, "push", device_tokens=["tok"], template="welcome", context={"name": "A", "plan": "B"})
    assert response.status_code == status.HTTP_400_BAD_REQUEST
    assert "template" in response.json()["errors"]


def test_the_subject_never_spans_lines(api, welcome):
    response = post(api, "email", to="ana@example.com", template="welcome",
                    context={"name": "Ana\r\nBcc: victim@example.com", "plan": "Pro"})
    content = Notification.objects.get(pk=response.json()["id"]).content
    assert content["subject"] == "Welcome, Ana Bcc: victim@example.com"


def test_sms_bodies_report_their_segments_in_the_notification_detail(api, welcome):
    response = post(api, "sms", to="+12025550123", template="welcome", context={"name": "Ana", "plan": "Pro"})
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    detail = api.get(f"/api/v1/notifications/{response.json()['id']}/").json()
    assert detail["sms"] == {"encoding": "GSM-7", "characters": len("Hi Ana! Plan: Pro"), "segments": 1}

    inline = post(api, "sms", to="+12025550123", body="Olá! " + "x" * 70)
    detail = api.get(f"/api/v1/notifications/{inline.json()['id']}/").json()
    assert detail["sms"] == {"encoding": "UCS-2", "characters": 75, "segments": 2}


def test_push_templates_render_title_and_body_and_keep_the_data(api):
    Template.objects.create(slug="order_shipped", channel="push", title="Order {{ order }} shipped",
                            body="Arrives {{ day }}")
    response = post(api, "push", device_tokens=["tok"], template="order_shipped",
                    context={"order": "#12", "day": "Friday"}, data={"order_id": "12"})
    assert response.status_code == status.HTTP_202_ACCEPTED, response.content
    content = Notification.objects.get(pk=response.json()["id"]).content
    assert (content["title"], content["body"], content["data"]) == ("Order #12 shipped", "Arrives Friday",
                                                                     {"order_id": "12"})


def test_ten_times_the_bound_in_unknown_slugs_leave_the_template_cache_at_its_bound_and_known_templates_cached(
        welcome, django_assert_num_queries, monkeypatch):
    from rest_framework.exceptions import ValidationError

    from apps.templating import services

    assert services._missing.maxsize == services.MAX_MISSING  # the process's cache has the documented bound
    # The same cache with a smaller bound, so that ten times the bound in unknown slugs (each one a query)
    # takes 1,000 lookups instead of 10,000; the bounding is the same code whatever the bound.
    monkeypatch.setattr(services._missing, "maxsize", 100)
    for cache in (services._found, services._missing):  # the lookups may outlast the 10 s lifetime
        monkeypatch.setattr(cache, "ttl", 3600.0)
    bound = services._missing.maxsize
    context = {"name": "Ana", "plan": "Pro"}
    render_template(slug="welcome", channel="email", context=context, locale="")  # cached now
    for i in range(10 * bound):
        with pytest.raises(ValidationError):
            render_template(slug=f"no-such-template-{i}", channel="email", context=context, locale="")

    assert len(services._missing) == bound
    assert ("no-such-template-0", "email") not in services._missing  # the oldest misses went first
    assert len(services._found) == 1
    with django_assert_num_queries(0):  # the known template is still served from the cache
        assert render_template(slug="welcome", channel="email", context=context,
                               locale="")["subject"] == "Welcome, Ana"
        with pytest.raises(ValidationError):  # and a recent miss is still remembered
            render_template(slug=f"no-such-template-{10 * bound - 1}", channel="email", context=context,
                            locale="")
