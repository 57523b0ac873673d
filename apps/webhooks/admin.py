from django.contrib import admin, messages

from .models import WebhookEndpoint
from .services import webhook_endpoint_enable


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "project", "events", "channels", "active", "disabled_reason", "consecutive_failures",
                    "last_success_at", "created_at")
    list_filter = ("project", "active")
    search_fields = ("url", "description")
    exclude = ("secret",)  # shown once, at registration through the API
    readonly_fields = ("active", "disabled_at", "disabled_reason", "consecutive_failures", "last_error",
                       "last_success_at", "last_failure_at", "api_key", "project", "created_at")
    actions = ["enable"]

    def has_add_permission(self, request):
        return False  # registered through the API, which returns the secret once

    @admin.action(description="Re-enable selected endpoints")
    def enable(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_enable(endpoint=endpoint)
        self.message_user(request, f"Re-enabled {queryset.count()} endpoint(s).", messages.SUCCESS)
