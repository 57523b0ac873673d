from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "apps.apikeys"
    label = "apikeys"
    verbose_name = "API keys"

    def ready(self):
        from . import schema  # noqa: F401 - registers the OpenAPI security scheme
