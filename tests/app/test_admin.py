"""The admin pages for recipients, devices, preferences, categories and templates load and save
for a logged-in staff user (Django test client, real PostgreSQL)."""
import json
from datetime import time

import pytest
from django.contrib.auth import get_user_model

from apps.notifications.models import Category, Notification
from apps.recipients.models import Device, Preference, Recipient
from apps.templating.models import Template

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_user("operator", "op@example.com", "pw-operator-123",
                                                is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def form_data(response) -> dict:
    """The POST body the admin page would send unchanged: its main form, inline forms and management forms."""
    forms = [response.context["adminform"].form]
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms.extend(formset.forms)
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if value is None or value is False:
                continue
            if value is True:
                value = "on"
            elif not isinstance(value, (list, str, int)):
                value = field.prepare_value(value) if hasattr(field, "prepare_value") else str(value)
            data[form.add_prefix(name)] = value
    return data


def assert_saved(response):
    assert response.status_code == 302, _errors(response)


def _errors(response):
    if response.context is None:
        return response.content[:2000]
    errors = [response.context["adminform"].form.errors] if "adminform" in response.context else []
    for inline in response.context.get("inline_admin_formsets", []):
        errors += [inline.formset.errors, inline.formset.non_form_errors()]
    return errors


# --- recipients with inline preferences and devices ---------------------------------

def test_recipient_admin_pages_load_search_and_filter(staff):
    alice = Recipient.objects.create(external_id="alice", email="alice@example.com", timezone="America/New_York")
    Device.objects.create(recipient=alice, platform="android", token="tok")
    Preference.objects.create(recipient=alice, channel="email", enabled=False)
    for url in ["/admin/recipients/recipient/", "/admin/recipients/recipient/?q=alice",
                "/admin/recipients/recipient/?timezone=America%2FNew_York", "/admin/recipients/recipient/add/",
                f"/admin/recipients/recipient/{alice.pk}/change/"]:
        response = staff.get(url)
        assert response.status_code == 200, url
    assert b"alice" in staff.get("/admin/recipients/recipient/?q=alice").content
    assert b"alice" not in staff.get("/admin/recipients/recipient/?q=zed").content.split(b"result_list")[-1]


def test_recipient_add_page_saves_a_recipient_with_a_preference_and_a_device(staff):
    data = form_data(staff.get("/admin/recipients/recipient/add/"))
    data.update({
        "external_id": "bob", "email": "bob@example.com", "phone": "+12025550123", "timezone": "Europe/Lisbon",
        "locale": "pt_br", "quiet_hours_start": "22:00", "quiet_hours_end": "07:00",
        "preferences-TOTAL_FORMS": "1", "preferences-0-channel": "email",
        "preferences-0-category": str(Category.objects.get(slug="marketing").pk),
        "devices-TOTAL_FORMS": "1", "devices-0-platform": "ios", "devices-0-token": "apns-1",
        "devices-0-active": "on",
    })
    assert_saved(staff.post("/admin/recipients/recipient/add/", data))
    bob = Recipient.objects.get(external_id="bob")
    assert (bob.locale, bob.quiet_hours) == ("pt-BR", (time(22), time(7)))
    preference = bob.preferences.get()
    assert (preference.channel, preference.category.slug, preference.enabled) == ("email", "marketing", False)
    assert bob.devices.get().token == "apns-1"


def test_recipient_change_page_saves_edits_to_the_recipient_and_its_inlines(staff):
    alice = Recipient.objects.create(external_id="alice", email="alice@example.com")
    Preference.objects.create(recipient=alice, channel="sms", enabled=False)
    Device.objects.create(recipient=alice, platform="android", token="tok")
    url = f"/admin/recipients/recipient/{alice.pk}/change/"
    data = form_data(staff.get(url))
    data.update({"name": "Alice A.", "preferences-0-enabled": "on"})
    data.pop("devices-0-active")
    assert_saved(staff.post(url, data))
    alice.refresh_from_db()
    assert alice.name == "Alice A."
    assert alice.preferences.get().enabled is True
    assert alice.devices.get().active is False


def test_recipient_admin_refuses_bad_timezone_phone_and_half_quiet_hours(staff):
    data = form_data(staff.get("/admin/recipients/recipient/add/"))
    data.update({"external_id": "bad", "timezone": "Mars/Base", "phone": "12345", "quiet_hours_start": "22:00"})
    response = staff.post("/admin/recipients/recipient/add/", data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert {"timezone", "phone", "__all__"} <= set(errors)
    assert not Recipient.objects.filter(external_id="bad").exists()


def test_deleting_a_recipient_in_the_admin_keeps_anonymised_history(staff, api):
    api.put("/api/v1/recipients/alice/", {"email": "alice@example.com"}, format="json")
    notification_id = api.post("/api/v1/notifications/email/", {"recipient": "alice", "subject": "s", "body": "b"},
                               format="json").json()["id"]
    alice = Recipient.objects.get(external_id="alice")
    response = staff.post(f"/admin/recipients/recipient/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Recipient.objects.exists()
    notification = Notification.objects.get(pk=notification_id)
    assert (notification.recipient_id, notification.content, notification.status) == (None, {}, "cancelled")


# --- devices and preferences on their own ----------------------------------------

def test_device_admin_pages_load_and_save(staff):
    alice = Recipient.objects.create(external_id="alice")
    for url in ["/admin/recipients/device/", "/admin/recipients/device/?platform=ios&active=1",
                "/admin/recipients/device/?q=alice", "/admin/recipients/device/add/"]:
        assert staff.get(url).status_code == 200, url
    data = form_data(staff.get("/admin/recipients/device/add/"))
    data.update({"recipient": str(alice.pk), "platform": "android", "token": "tok-1", "active": "on"})
    assert_saved(staff.post("/admin/recipients/device/add/", data))
    device = Device.objects.get()
    url = f"/admin/recipients/device/{device.pk}/change/"
    data = form_data(staff.get(url))
    data.pop("active")
    data["deactivated_reason"] = "lost phone"
    assert_saved(staff.post(url, data))
    device.refresh_from_db()
    assert (device.active, device.deactivated_reason) == (False, "lost phone")


def test_preference_admin_pages_load_and_save(staff):
    alice = Recipient.objects.create(external_id="alice")
    for url in ["/admin/recipients/preference/", "/admin/recipients/preference/?channel=email&enabled=0",
                "/admin/recipients/preference/?q=alice", "/admin/recipients/preference/add/"]:
        assert staff.get(url).status_code == 200, url
    data = form_data(staff.get("/admin/recipients/preference/add/"))
    data.update({"recipient": str(alice.pk), "channel": "sms"})
    data.pop("enabled")  # unticked: opted out
    assert_saved(staff.post("/admin/recipients/preference/add/", data))
    preference = Preference.objects.get()
    assert (preference.channel, preference.category, preference.enabled) == ("sms", None, False)
    url = f"/admin/recipients/preference/{preference.pk}/change/"
    data = form_data(staff.get(url))
    data["enabled"] = "on"
    assert_saved(staff.post(url, data))
    preference.refresh_from_db()
    assert preference.enabled is True


# --- categories --------------------------------------------------------------------

def test_category_admin_pages_load_and_save(staff):
    for url in ["/admin/notifications/category/", "/admin/notifications/category/?allow_opt_out__exact=0",
                "/admin/notifications/category/?q=market", "/admin/notifications/category/add/"]:
        assert staff.get(url).status_code == 200, url
    data = form_data(staff.get("/admin/notifications/category/add/"))
    data.update({"slug": "newsletter", "name": "Newsletter", "default_priority": "low", "allow_opt_out": "on",
                 "quiet_hours_apply": "on"})
    assert_saved(staff.post("/admin/notifications/category/add/", data))
    newsletter = Category.objects.get(slug="newsletter")
    assert (newsletter.allow_opt_out, newsletter.quiet_hours_apply) == (True, True)
    url = f"/admin/notifications/category/{newsletter.pk}/change/"
    data = form_data(staff.get(url))
    data.pop("allow_opt_out")
    assert_saved(staff.post(url, data))
    newsletter.refresh_from_db()
    assert newsletter.allow_opt_out is False


# --- templates ---------------------------------------------------------------------

def test_template_admin_pages_load_search_and_filter(staff):
    Template.objects.create(slug="welcome", channel="email", subject="Hi {{ name }}", body="Hello")
    for url in ["/admin/templating/template/", "/admin/templating/template/?channel=email",
                "/admin/templating/template/?q=welcome", "/admin/templating/template/add/"]:
        assert staff.get(url).status_code == 200, url


def test_template_add_and_change_pages_save_and_the_change_page_shows_a_rendered_preview(staff):
    data = form_data(staff.get("/admin/templating/template/add/"))
    data.update({"slug": "welcome", "channel": "email", "locale": "pt_br", "subject": "Olá {{ name }}",
                 "body": "Seu plano: {{ plan }}", "html": "<p>Olá <b>{{ name }}</b></p>",
                 "sample_context": json.dumps({"name": "<Ana>", "plan": "Pro"})})
    assert_saved(staff.post("/admin/templating/template/add/", data))
    template = Template.objects.get()
    assert template.locale == "pt-BR"

    url = f"/admin/templating/template/{template.pk}/change/"
    page = staff.get(url).content.decode()
    assert '<pre style="white-space:pre-wrap;margin:0">Olá &lt;Ana&gt;</pre>' in page  # rendered subject, shown
    assert "Seu plano: Pro" in page
    # The HTML part escaped the context (&lt;Ana&gt;), and the page escapes the whole part once more.
    assert 'srcdoc="&lt;p&gt;Olá &lt;b&gt;&amp;lt;Ana&amp;gt;&lt;/b&gt;&lt;/p&gt;"' in page
    assert "<b><Ana>" not in page

    data = form_data(staff.get(url))
    data["sample_context"] = json.dumps({"name": "Ana"})
    assert_saved(staff.post(url, data))
    page = staff.get(url).content.decode()
    assert "Missing variable &#x27;plan&#x27;" in page


def test_sms_template_preview_shows_the_segment_count(staff):
    template = Template.objects.create(slug="code", channel="sms", body="Código: {{ code }}",
                                       sample_context={"code": "123456"})
    page = staff.get(f"/admin/templating/template/{template.pk}/change/").content.decode()
    assert "Código: 123456" in page
    assert "1 (UCS-2, 14 UTF-16 units)" in page


@pytest.mark.parametrize("changes,field", [
    ({"subject": "Hi {% debug %}"}, "subject"),
    ({"body": "{% if %}"}, "body"),
    ({"subject": ""}, "subject"),
    ({"title": "Not for email"}, "title"),
    ({"locale": "portuguese!"}, "locale"),
])
def test_template_admin_refuses_broken_or_misplaced_parts(staff, changes, field):
    data = form_data(staff.get("/admin/templating/template/add/"))
    data.update({"slug": "welcome", "channel": "email", "subject": "Hi", "body": "Hello", **changes})
    response = staff.post("/admin/templating/template/add/", data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Template.objects.exists()


def test_template_admin_refuses_a_second_template_for_the_same_slug_channel_and_locale(staff):
    Template.objects.create(slug="welcome", channel="email", locale="pt-BR", subject="Hi", body="Hello")
    data = form_data(staff.get("/admin/templating/template/add/"))
    data.update({"slug": "welcome", "channel": "email", "locale": "pt_BR", "subject": "Hi", "body": "Hello"})
    response = staff.post("/admin/templating/template/add/", data)
    assert response.status_code == 200
    assert Template.objects.count() == 1


def test_two_inline_preferences_for_the_same_channel_are_a_form_error_not_a_crash(staff):
    alice = Recipient.objects.create(external_id="alice")
    url = f"/admin/recipients/recipient/{alice.pk}/change/"
    data = form_data(staff.get(url))
    data.update({"preferences-TOTAL_FORMS": "2", "preferences-0-channel": "email", "preferences-1-channel": "email"})
    response = staff.post(url, data)
    assert response.status_code == 200
    assert not Preference.objects.exists()


def test_a_duplicate_preference_on_its_own_page_is_a_form_error_not_a_crash(staff):
    alice = Recipient.objects.create(external_id="alice")
    Preference.objects.create(recipient=alice, channel="sms", enabled=False)
    data = form_data(staff.get("/admin/recipients/preference/add/"))
    data.update({"recipient": str(alice.pk), "channel": "sms"})
    response = staff.post("/admin/recipients/preference/add/", data)
    assert response.status_code == 200
    assert Preference.objects.count() == 1


# --- projects and API keys --------------------------------------------------------------
def test_the_api_key_admin_shows_and_changes_a_keys_project(staff):
    from apps.apikeys.models import Project
    from apps.apikeys.services import api_key_create

    key = api_key_create(name="shop").api_key
    other = Project.objects.create(slug="shop-eu", name="Shop EU")
    listing = staff.get("/admin/apikeys/apikey/")
    assert listing.status_code == 200 and b"default" in listing.content
    page = staff.get(f"/admin/apikeys/apikey/{key.pk}/change/")
    data = form_data(page)
    assert data["project"] == key.project_id
    data["project"] = str(other.pk)
    assert_saved(staff.post(f"/admin/apikeys/apikey/{key.pk}/change/", data))
    key.refresh_from_db()
    assert key.project.slug == "shop-eu"
    assert staff.get("/admin/apikeys/project/").status_code == 200


def test_a_recipient_made_in_the_admin_gets_the_chosen_project_which_is_then_fixed(staff):
    from apps.apikeys.models import Project

    shop = Project.objects.create(slug="shop")
    data = form_data(staff.get("/admin/recipients/recipient/add/"))
    data.update({"project": str(shop.pk), "external_id": "user-42", "timezone": "UTC"})
    assert_saved(staff.post("/admin/recipients/recipient/add/", data))
    recipient = Recipient.objects.get(external_id="user-42")
    assert recipient.project == shop
    page = staff.get(f"/admin/recipients/recipient/{recipient.pk}/change/")
    assert "project" not in page.context["adminform"].form.fields  # read-only once made
