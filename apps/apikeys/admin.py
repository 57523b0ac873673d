from django.contrib import admin

from .models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "scopes", "allowed_channels", "created_at", "last_used_at", "revoked_at")
    search_fields = ("name", "prefix")
    list_filter = ("revoked_at",)
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    fields = ("name", "prefix", "scopes", "allowed_channels", "revoked_at", "key_hash", "created_at", "last_used_at")

    def has_add_permission(self, request):
        # Keys are issued with `manage.py create_api_key`, which shows the secret once.
        return False
