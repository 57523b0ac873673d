"""Broadcasts in the admin: read-only (they are made through the API)."""
from django.contrib import admin

from .models import Broadcast


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "topic_key", "status", "created", "skipped", "project", "created_at")
    list_filter = ("status", "channel", "project")
    list_select_related = ("project",)
    search_fields = ("=id", "topic_key")
    ordering = ("-id",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
