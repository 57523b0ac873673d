from django.apps import AppConfig


class TemplatingConfig(AppConfig):
    name = "apps.templating"
    label = "templating"
    verbose_name = "Templates"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import Template
        from .services import clear_cache

        # Cache invalidation only: an edit in this process is seen at once, others within the TTL.
        post_save.connect(lambda **kwargs: clear_cache(), sender=Template, weak=False)
        post_delete.connect(lambda **kwargs: clear_cache(), sender=Template, weak=False)
