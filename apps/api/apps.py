from django.apps import AppConfig


class ApiConfig(AppConfig):
    """Project-wide DRF plumbing: JSON parsing and rendering, content negotiation, the error shape,
    request limits, cursor pagination and what an API key may see. No models."""

    name = "apps.api"
    label = "api"
