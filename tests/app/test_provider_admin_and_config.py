"""Breakers in the admin; providers built and checked from settings."""
import pytest
from django.core.exceptions import ImproperlyConfigured

from notifier import circuit
from notifier.channels.email import SmtpEmailProvider
from notifier.channels.push import FcmPushProvider, WebPushProvider
from notifier.channels.registry import build_provider, check_configuration, providers_for
from notifier.channels.sms import TwilioSmsProvider


@pytest.mark.django_db
def test_the_admin_shows_every_breaker_and_its_state(admin_client, settings):
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "email": ["smtp", "smtp2"]}
    circuit.reset_breaker()
    circuit.breaker().record("email", "smtp2", [False] * settings.NOTIFIER_CIRCUIT_THRESHOLD, "421 try later")
    response = admin_client.get("/admin/providers/circuitbreakerstate/")
    assert response.status_code == 200
    rows = {(r["channel"], r["provider"]): r["state"] for r in response.context["rows"]}
    assert rows[("email", "smtp2")] == "open" and rows[("email", "smtp")] == "closed"
    assert b"421 try later" in response.content


@pytest.mark.django_db
def test_a_superuser_can_close_a_breaker_from_the_admin(admin_client, settings):
    circuit.reset_breaker()
    circuit.breaker().record("email", "smtp", [False] * settings.NOTIFIER_CIRCUIT_THRESHOLD)
    response = admin_client.post("/admin/providers/circuitbreakerstate/", {"breaker": "email:smtp"})
    assert response.status_code == 302
    assert circuit.breaker().permit("email", "smtp").allowed


def test_the_registry_builds_each_provider_from_settings(settings, fake_fcm, web_push):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "1" * 32, "t"
    settings.TWILIO_FROM_NUMBER, settings.TWILIO_API_BASE_URL = "+15005550006", "http://127.0.0.1:9"
    settings.NOTIFIER_PUBLIC_URL = "https://notify.example.com/"
    settings.FCM_CREDENTIALS_FILE, settings.FCM_API_BASE_URL = fake_fcm.credentials_file, fake_fcm.url
    settings.VAPID_PRIVATE_KEY, settings.VAPID_SUBJECT = web_push.vapid_private_key, "mailto:ops@example.com"
    settings.NOTIFIER_SMTP_RELAYS = {**settings.NOTIFIER_SMTP_RELAYS, "smtp2": {
        "host": "relay2.local", "port": 25, "username": "", "password": "", "use_tls": False, "use_ssl": False,
        "timeout": 10}}
    twilio = build_provider("sms", "twilio")
    assert isinstance(twilio, TwilioSmsProvider)
    assert twilio.status_callback == "https://notify.example.com/api/v1/webhooks/twilio/status/"
    assert isinstance(build_provider("push", "fcm"), FcmPushProvider)
    assert isinstance(build_provider("push", "webpush"), WebPushProvider)
    smtp2 = build_provider("email", "smtp2")
    assert isinstance(smtp2, SmtpEmailProvider) and smtp2.name == "smtp2" and smtp2.host == "relay2.local"


@pytest.mark.parametrize("channel,names,missing", [
    ("sms", ["twilio"], "TWILIO_ACCOUNT_SID"),
    ("push", ["fcm"], "FCM_CREDENTIALS_FILE"),
    ("push", ["webpush"], "VAPID_PRIVATE_KEY"),
    ("email", ["smtp", "smtp3"], "EMAIL3_HOST"),
])
def test_a_chosen_provider_without_its_settings_is_refused_at_start_up(settings, channel, names, missing):
    settings.TWILIO_ACCOUNT_SID = settings.FCM_CREDENTIALS_FILE = settings.VAPID_PRIVATE_KEY = ""
    settings.NOTIFIER_PROVIDERS_EXPLICIT = {"email", "sms", "push"}
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, channel: names}
    with pytest.raises(ImproperlyConfigured, match=missing):
        check_configuration()


def test_unknown_providers_are_refused(settings):
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "sms": ["carrier-pigeon"]}
    with pytest.raises(ImproperlyConfigured):
        check_configuration()
    providers_for.cache_clear()


def test_console_is_refused_without_debug_unless_explicit(settings):
    settings.DEBUG = False
    settings.NOTIFIER_PROVIDERS = {**settings.NOTIFIER_PROVIDERS, "sms": ["console"]}
    settings.NOTIFIER_PROVIDERS_EXPLICIT = set()
    with pytest.raises(ImproperlyConfigured, match="console"):
        check_configuration()
    settings.NOTIFIER_PROVIDERS_EXPLICIT = {"sms", "push", "email"}
    check_configuration()
