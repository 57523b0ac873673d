from django.core.exceptions import ValidationError
from django.db import models

from apps.notifications.models import API_CHANNELS, Channel

from .locales import is_valid_locale, normalize_locale

# Parts each channel's template uses; the first ones listed are required.
CHANNEL_PARTS = {
    Channel.EMAIL: {"required": ("subject", "body"), "optional": ("html",)},
    Channel.SMS: {"required": ("body",), "optional": ()},
    Channel.PUSH: {"required": ("title", "body"), "optional": ()},
    Channel.IN_APP: {"required": ("title", "body"), "optional": ()},
}
ALL_PARTS = ("subject", "title", "body", "html")


class Template(models.Model):
    """Content of one notification kind (slug) for one channel and locale.

    Parts are Django templates rendered in a sandbox: email ``subject``, ``body``
    (plain text) and optional ``html``; sms ``body``; push and in-app ``title``
    and ``body``. The empty locale is the default every other locale falls back to.
    """

    slug = models.SlugField(max_length=100, help_text="Name clients pass as `template`.")
    channel = models.CharField(max_length=16, choices=[(c.value, c.label) for c in API_CHANNELS])
    locale = models.CharField(max_length=35, blank=True,
                              help_text="e.g. pt-BR, pt, en; empty for the default (the last fallback).")
    description = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=998, blank=True, help_text="Email subject (plain text).")
    title = models.CharField(max_length=255, blank=True, help_text="Push and in-app title (plain text).")
    body = models.TextField(blank=True, help_text="Email plain-text body, SMS body, push and in-app body.")
    html = models.TextField(blank=True, help_text="Email HTML body; the context is HTML-escaped.")
    sample_context = models.JSONField(default=dict, blank=True, help_text="Context used for the admin preview.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug", "channel", "locale"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "channel", "locale"], name="template_unique_slug_channel_locale"),
        ]

    def __str__(self) -> str:
        return f"{self.slug} ({self.channel}, {self.locale or 'default'})"

    def clean(self):
        from .services import template_compile

        errors: dict[str, list[str]] = {}
        if self.locale:
            if not is_valid_locale(self.locale):
                errors["locale"] = ["Enter a locale tag such as pt-BR, pt or en."]
            else:
                self.locale = normalize_locale(self.locale)
        parts = CHANNEL_PARTS.get(self.channel)
        if parts:
            for name in parts["required"]:
                if not getattr(self, name):
                    errors.setdefault(name, []).append(f"Required for {self.channel} templates.")
            for name in ALL_PARTS:
                if getattr(self, name) and name not in parts["required"] + parts["optional"]:
                    errors.setdefault(name, []).append(f"Not used by {self.channel} templates.")
        if not isinstance(self.sample_context, dict):
            errors["sample_context"] = ["Must be a JSON object."]
        if not errors:
            try:
                template_compile(self)
            except ValidationError as exc:
                errors.update(exc.message_dict)
        if errors:
            raise ValidationError(errors)
