"""django-celery-beat's PeriodicTask admin, with recurring sends' kwargs checked before saving."""
from django import forms
from django.conf import settings
from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin, PeriodicTaskForm
from django_celery_beat.models import PeriodicTask
from kombu.utils.json import loads

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
        try:
            recurring_kwargs_validate(loads(data.get("kwargs") or "{}"))
        except ValueError:
            return data  # clean_kwargs already reported the JSON error
        except InvalidSchedule as exc:
            messages = [f"{field}: {', '.join(str(m) for m in msgs)}" for field, msgs in exc.detail.items()]
            self.add_error("kwargs", forms.ValidationError(messages))
        if not data.get("queue"):
            data["queue"] = settings.NOTIFIER_RECURRING_QUEUE
        return data


class RecurringSendAdmin(PeriodicTaskAdmin):
    form = RecurringSendForm


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, RecurringSendAdmin)
