from datetime import datetime, timezone

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from notifier import circuit
from notifier.addresses import canonical_address
from notifier.pii import mask_address

from .models import CircuitBreakerState, Suppression


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("masked_address", "channel", "category", "reason", "created_at", "updated_at")
    list_filter = ("reason", "channel")
    search_fields = ("address",)
    readonly_fields = ("notification_id", "created_at", "updated_at")
    fields = ("address", "channel", "category", "reason", "detail", "notification_id", "created_at", "updated_at")

    @admin.display(description="address")
    def masked_address(self, obj):
        return mask_address(obj.channel, obj.address)

    def get_changeform_initial_data(self, request):
        return {"reason": "manual", **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change):
        obj.address = canonical_address(obj.channel, obj.address)  # so it matches how sends are looked up
        super().save_model(request, obj, form, change)


@admin.register(CircuitBreakerState)
class CircuitBreakerAdmin(admin.ModelAdmin):
    """Read-only view of every provider's breaker (state in Redis), with a reset button."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            if not request.user.is_superuser:
                raise PermissionDenied
            channel, _, provider = request.POST.get("breaker", "").partition(":")
            if channel and provider:
                circuit.breaker().reset(channel, provider)
                self.message_user(request, f"Closed the circuit of {provider} ({channel}).", messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        try:
            rows = circuit.states()
            error = ""
        except Exception as exc:  # noqa: BLE001 - show the admin page even when Redis is down
            rows, error = [], f"Redis unreachable: {exc}"
        for row in rows:
            row["opened_until_dt"] = (datetime.fromtimestamp(row["opened_until"], tz=timezone.utc)
                                      if row["opened_until"] else None)
        context = {
            **self.admin_site.each_context(request),
            "title": "Circuit breakers",
            "opts": self.model._meta,
            "rows": rows,
            "error": error,
            "threshold": circuit.breaker().threshold,
            "cooldown": circuit.breaker().cooldown,
            "can_reset": request.user.is_superuser,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/providers/circuit_breakers.html", context)
