from django.contrib import admin

from .models import ApiKey, Project
from .services import api_key_sync_revocation, clear_cache


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")
    readonly_fields = ("created_at",)

    def has_delete_permission(self, request, obj=None):
        # Its notifications, recipients and endpoints would be left without an owner.
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "project", "scopes", "allowed_channels", "rate_limit", "rate_burst", "created_at",
                    "last_used_at", "revoked_at")
    search_fields = ("name", "prefix")
    list_filter = ("project", "revoked_at")
    list_select_related = ("project",)
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    fields = ("name", "prefix", "project", "scopes", "allowed_channels", "rate_limit", "rate_burst", "revoked_at",
              "key_hash", "created_at", "last_used_at")

    def has_add_permission(self, request):
        # Keys are issued with `manage.py create_api_key`, which shows the secret once.
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        clear_cache()  # this process answers with the new project, scopes and channels at once
        if "revoked_at" in form.changed_data:
            # Revoking (or un-revoking) here takes effect on the next request in every API process.
            api_key_sync_revocation(key_id=obj.pk, revoked=obj.revoked_at is not None)
