from django.contrib import admin, messages

from notifier.pii import mask_address

from . import resulthooks
from .models import Category, Notification, NotificationEvent, ResultHookOutbox, Status
from .commands import notifications_requeue


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "default_priority", "allow_opt_out", "quiet_hours_apply", "cap_count",
                    "cap_period_seconds", "cap_action")
    list_filter = ("default_priority", "allow_opt_out", "quiet_hours_apply")
    search_fields = ("slug", "name")


class EventInline(admin.TabularInline):
    model = NotificationEvent
    extra = 0
    can_delete = False
    fields = ("at", "status", "attempt", "provider", "detail")
    readonly_fields = fields
    ordering = ("at", "id")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "channel", "status", "priority", "category", "masked_to", "attempts",
                    "created_at", "sent_at")
    list_filter = ("status", "channel", "priority", "category", "project")
    search_fields = ("id", "group_key", "provider_message_id", "recipient__external_id")
    date_hierarchy = "created_at"
    inlines = [EventInline]
    actions = ["replay"]
    list_select_related = ("recipient", "project")
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Read-only: the change view still shows the record and its events.
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="to")
    def masked_to(self, obj):
        return mask_address(obj.channel, obj.to) if obj.to else (obj.recipient.external_id if obj.recipient else "")

    @admin.action(description="Replay selected failed notifications")
    def replay(self, request, queryset):
        ids = list(queryset.filter(status=Status.FAILED).values_list("id", flat=True))
        count = notifications_requeue(ids=ids, detail=f"replayed from the admin by {request.user}")
        skipped = queryset.count() - count
        self.message_user(request, f"Requeued {count} failed notification(s)."
                          + (f" Skipped {skipped} not failed." if skipped else ""), messages.SUCCESS)


class DeadFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("dead", "dead (given up)"), ("pending", "pending or retrying")]

    def queryset(self, request, queryset):
        if self.value() == "dead":
            return queryset.filter(dead_at__isnull=False)
        if self.value() == "pending":
            return queryset.filter(dead_at__isnull=True)
        return queryset


@admin.register(ResultHookOutbox)
class ResultHookOutboxAdmin(admin.ModelAdmin):
    """Result hooks (inbox entries, webhook events) not run yet: rows that failed and wait for a retry, and
    dead ones (failed NOTIFIER_RESULT_HOOK_MAX_ATTEMPTS times). A row that ran is deleted."""

    list_display = ("id", "hook", "created_at", "attempts", "next_attempt_at", "dead_at", "short_error")
    list_filter = (DeadFilter, "hook")
    actions = ["run_again"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    @admin.display(description="last error")
    def short_error(self, obj):
        return obj.last_error[:120]

    @admin.action(description="Run selected rows again (due now, fresh attempts)")
    def run_again(self, request, queryset):
        count = resulthooks.retry(list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} row(s) will run at the next result-hooks job.", messages.SUCCESS)
