import json

from rest_framework import serializers

from apps.notifications.models import API_CHANNELS
from apps.notifications.intake.validation import AwareDateTimeField

# Fields that describe when; everything else in the body describes what to send (see services.py).
SCHEDULE_FIELDS = ("name", "description", "enabled", "interval_seconds", "cron", "timezone", "start_at", "end_at")


class ScheduleInputSerializer(serializers.Serializer):
    """When a recurring send runs. What it sends is validated by ``recurring_kwargs_validate``."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    enabled = serializers.BooleanField(required=False, default=True)
    interval_seconds = serializers.IntegerField(min_value=1, max_value=366 * 86400, required=False)
    cron = serializers.CharField(max_length=200, required=False,
                                 help_text="minute hour day-of-month month day-of-week, e.g. '0 9 * * mon-fri'.")
    timezone = serializers.CharField(max_length=64, required=False, help_text="IANA name for cron; default UTC.")
    start_at = AwareDateTimeField(required=False, allow_null=True)
    end_at = AwareDateTimeField(required=False, allow_null=True)
    # Documented here for the schema; checked by the service.
    channel = serializers.ChoiceField(choices=[(c.value, c.label) for c in API_CHANNELS])
    recipients = serializers.ListField(child=serializers.CharField(), required=False,
                                       help_text="External ids of known recipients.")
    to = serializers.ListField(child=serializers.CharField(), required=False, help_text="Direct addresses.")
    template = serializers.CharField(required=False)
    context = serializers.DictField(required=False)
    subject = serializers.CharField(required=False)
    body = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    priority = serializers.CharField(required=False)
    ttl_seconds = serializers.IntegerField(required=False)


class ScheduleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    schedule = serializers.SerializerMethodField()
    start_at = serializers.DateTimeField(source="start_time", allow_null=True)
    end_at = serializers.DateTimeField(source="expires", allow_null=True)
    last_run_at = serializers.DateTimeField(allow_null=True)
    total_run_count = serializers.IntegerField()
    send = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(source="date_changed")

    def get_schedule(self, obj) -> dict:
        if obj.interval_id:
            seconds = int(obj.interval.schedule.run_every.total_seconds())
            return {"interval_seconds": seconds}
        if obj.crontab_id:
            c = obj.crontab
            cron = " ".join([c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week])
            return {"cron": cron, "timezone": str(c.timezone)}
        return {}

    def get_send(self, obj) -> dict:
        try:
            kwargs = json.loads(obj.kwargs or "{}")
        except ValueError:
            return {}
        return {k: v for k, v in kwargs.items() if k != "api_key_id"} if isinstance(kwargs, dict) else {}
