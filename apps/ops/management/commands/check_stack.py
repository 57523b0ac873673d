"""``manage.py check_stack``: the readiness of /readyz, plus queue depths, for operators."""
from django.core.management.base import BaseCommand

from apps.ops import collectors
from apps.ops.readiness import OK, readiness


class Command(BaseCommand):
    help = "Check that PostgreSQL, RabbitMQ and Redis answer (as /readyz does); exit 1 if any is down."

    def handle(self, *args, **options):
        result = readiness()
        width = max(len(name) for name in result["checks"])
        for name, value in result["checks"].items():
            style = self.style.SUCCESS if value == OK else self.style.ERROR
            self.stdout.write(f"{name.ljust(width)}  {style(value)}")
        if result["checks"].get("rabbitmq") == OK:
            try:
                stats = collectors.probe.queue_stats(max_age=0)
            except Exception as exc:  # noqa: BLE001
                self.stdout.write(f"queues: could not read: {exc}")
            else:
                for queue, value in stats.items():
                    if value is None:
                        self.stdout.write(f"queue {queue}: not declared yet")
                    else:
                        self.stdout.write(f"queue {queue}: {value[0]} messages, {value[1]} consumers")
        if result["status"] != "ok":
            down = ", ".join(name for name, value in result["checks"].items() if value != OK)
            self.stderr.write(self.style.ERROR(f"not ready: {down} unreachable"))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS("ready"))
