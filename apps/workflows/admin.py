"""Digests and fallback steps in the admin: category digests are edited here; groups and steps are read-only
(their notifications are cancelled through the API or the notifications admin)."""
from django.contrib import admin

from .models import CategoryDigest, DigestGroup, DigestMember, FallbackStep


@admin.register(CategoryDigest)
class CategoryDigestAdmin(admin.ModelAdmin):
    list_display = ("category", "key", "window_seconds", "template")


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DigestMemberInline(admin.TabularInline):
    model = DigestMember
    fields = ("notification",)
    readonly_fields = ("notification",)
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(DigestGroup)
class DigestGroupAdmin(ReadOnly):
    list_display = ("id", "key", "channel", "project", "state", "items", "opened_at", "release_at", "digest")
    list_filter = ("state", "channel")
    search_fields = ("key",)
    readonly_fields = [f.name for f in DigestGroup._meta.fields]
    inlines = [DigestMemberInline]
    list_select_related = ("project",)


@admin.register(FallbackStep)
class FallbackStepAdmin(ReadOnly):
    list_display = ("id", "source", "position", "channel", "after_seconds", "state", "due_at", "notification")
    list_filter = ("state", "channel")
    readonly_fields = [f.name for f in FallbackStep._meta.fields]
    list_select_related = ("project",)
