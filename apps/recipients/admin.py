from django import forms
from django.contrib import admin, messages

from apps.templating.locales import is_valid_locale, normalize_locale
from notifier.quiet_hours import is_known_timezone

from .models import Device, Preference, Recipient
from .services import recipient_erase


class RecipientForm(forms.ModelForm):
    class Meta:
        model = Recipient
        fields = "__all__"

    def clean_timezone(self):
        value = self.cleaned_data["timezone"]
        if not is_known_timezone(value):
            raise forms.ValidationError("Unknown time zone; use an IANA name such as America/New_York.")
        return value

    def clean_phone(self):
        from apps.notifications.intake.validation import E164_MESSAGE
        from notifier.addresses import is_e164

        value = self.cleaned_data["phone"]
        if value and not is_e164(value):
            raise forms.ValidationError(E164_MESSAGE)
        return value

    def clean_email(self):
        from django.core.validators import validate_email

        value = self.cleaned_data["email"]
        if value:
            validate_email(value)
        return value

    def clean_locale(self):
        value = self.cleaned_data["locale"]
        if value and not is_valid_locale(value):
            raise forms.ValidationError("Enter a locale tag such as pt-BR, pt or en.")
        return normalize_locale(value)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("quiet_hours_start"), cleaned.get("quiet_hours_end")
        if (start is None) != (end is None):
            raise forms.ValidationError("Give both ends of the quiet hours, or neither.")
        if start is not None and start == end:
            self.add_error("quiet_hours_end", "Must differ from the start.")
        return cleaned


class DeviceInline(admin.TabularInline):
    model = Device
    extra = 0
    fields = ("platform", "token", "active", "deactivated_reason", "created_at")
    readonly_fields = ("created_at",)


class PreferenceFormSet(forms.BaseInlineFormSet):
    """One preference per (category, channel): conditional unique constraints are not checked across inline rows."""

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            key = (form.cleaned_data.get("category"), form.cleaned_data.get("channel"))
            if key in seen:
                scope = key[0].slug if key[0] else "every category"
                raise forms.ValidationError(f"Only one preference for {key[1]} on {scope}.")
            seen.add(key)


class PreferenceInline(admin.TabularInline):
    model = Preference
    formset = PreferenceFormSet
    extra = 0
    fields = ("channel", "category", "enabled", "updated_at")
    readonly_fields = ("updated_at",)
    verbose_name = "preference (no category: every category on that channel)"


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    form = RecipientForm
    list_display = ("external_id", "project", "name", "timezone", "locale", "quiet_hours_start", "quiet_hours_end",
                    "created_at")
    list_filter = ("project", "timezone", "locale", "created_at")
    list_select_related = ("project",)
    search_fields = ("external_id", "name", "email", "phone")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("project", "external_id", "name", "email", "phone", "timezone", "locale")}),
        ("Quiet hours (in the recipient's time zone)", {"fields": ("quiet_hours_start", "quiet_hours_end")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )
    inlines = [PreferenceInline, DeviceInline]

    def get_readonly_fields(self, request, obj=None):
        # A recipient stays in its project: its notifications and inbox belong to that project.
        return (*self.readonly_fields, "project") if obj is not None else self.readonly_fields

    def delete_model(self, request, obj):
        """Deleting erases personal data and keeps anonymised delivery history, as the API's DELETE does."""
        recipient_erase(recipient=obj)

    def delete_queryset(self, request, queryset):
        for recipient in queryset:
            recipient_erase(recipient=recipient)
        self.message_user(request, "Personal data erased; delivery history kept anonymised.", messages.INFO)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "platform", "active", "deactivated_reason", "created_at")
    list_filter = ("platform", "active")
    search_fields = ("recipient__external_id", "token")
    raw_id_fields = ("recipient",)
    list_select_related = ("recipient",)


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ("recipient", "channel", "category", "enabled", "updated_at")
    list_filter = ("channel", "category", "enabled")
    search_fields = ("recipient__external_id",)
    raw_id_fields = ("recipient",)
    list_select_related = ("recipient", "category")
