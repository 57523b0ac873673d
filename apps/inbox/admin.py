from django.contrib import admin

from .models import InboxState


@admin.register(InboxState)
class InboxStateAdmin(admin.ModelAdmin):
    list_display = ("notification_id", "recipient", "read_at", "archived_at")
    list_filter = (("read_at", admin.EmptyFieldListFilter), ("archived_at", admin.EmptyFieldListFilter))
    search_fields = ("recipient__external_id", "notification__id")
    raw_id_fields = ("notification", "recipient")
    list_select_related = ("recipient",)
    show_full_result_count = False
