from django.apps import AppConfig


class RecipientsConfig(AppConfig):
    name = "apps.recipients"
    label = "recipients"
