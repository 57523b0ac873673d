from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """Provider-facing parts: the suppression list, Twilio status webhook, unsubscribe links, breakers in the admin."""

    name = "apps.providers"
    label = "providers"
    verbose_name = "Providers and suppressions"
