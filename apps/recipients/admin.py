from django.contrib import admin

from .models import Device, Recipient


class DeviceInline(admin.TabularInline):
    model = Device
    extra = 0


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "timezone", "locale", "created_at")
    search_fields = ("external_id", "name", "email", "phone")
    inlines = [DeviceInline]
