from django.contrib import admin, messages

from notifier.pii import mask_address

from .models import Category, Notification, NotificationEvent, Status
from .services import notifications_requeue


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
