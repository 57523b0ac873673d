"""django-celery-beat's PeriodicTask admin, with recurring sends' kwargs checked before saving."""
from django import forms
from django.conf import settings
from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin, PeriodicTaskForm
from django_celery_beat.models import PeriodicTask
from kombu.utils.json import loads

from .models import RecurringSendOwner
from .services import TASK_NAME, InvalidSchedule, recurring_kwargs_validate

KWARGS_HELP = (
    f"For {TASK_NAME} (a recurring send), a JSON object: "
    '{"channel": "email", "recipients": ["external-id", ...] or "to": ["address", ...], '
    '"template": "slug", "context": {...} or inline "subject"/"body"/"html"/"title"/"data", '
    'optional "category", "priority", "ttl_seconds", "metadata", "group_key", "locale"}. '
    "Checked when saved, like a POST to /api/v1/notifications/{channel}/. Use a crontab schedule with a "
    "timezone for local-time sends."
)


class RecurringSendForm(PeriodicTaskForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kwargs" in self.fields:
            self.fields["kwargs"].help_text = KWARGS_HELP

    def clean(self):
        data = super().clean()
        if data.get("task") != TASK_NAME:
            return data
        owner = getattr(self.instance, "notifier_owner", None) if self.instance.pk else None
        try:
            recurring_kwargs_validate(loads(data.get("kwargs") or "{}"),
                                      project_id=owner.project_id if owner is not None else None)
        except ValueError:
            return data  # clean_kwargs already reported the JSON error
        except InvalidSchedule as exc:
            messages = [f"{field}: {', '.join(str(m) for m in msgs)}" for field, msgs in exc.detail.items()]
            self.add_error("kwargs", forms.ValidationError(messages))
        if not data.get("queue"):
            data["queue"] = settings.NOTIFIER_RECURRING_QUEUE
        return data


class RecurringSendOwnerInline(admin.StackedInline):
    model = RecurringSendOwner
    can_delete = False
    fields = ("project", "channel")
    readonly_fields = ("channel",)
    verbose_name = "owner (recurring sends only; empty: the default project)"


class RecurringSendAdmin(PeriodicTaskAdmin):
    form = RecurringSendForm
    inlines = [*getattr(PeriodicTaskAdmin, "inlines", []), RecurringSendOwnerInline]

    def save_related(self, request, form, formset, change):
        super().save_related(request, form, formset, change)
        task = form.instance
        if task.task != TASK_NAME:
            return
        try:
            channel = loads(task.kwargs or "{}").get("channel", "")
        except (ValueError, AttributeError):
            channel = ""
        # Every recurring send has an owner; the API shows it to keys of that project only.
        owner, _ = RecurringSendOwner.objects.get_or_create(periodic_task=task)
        if owner.channel != channel:
            owner.channel = channel if isinstance(channel, str) else ""
            owner.save(update_fields=["channel"])


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, RecurringSendAdmin)
