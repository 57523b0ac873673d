"""``manage.py partitions``: the time partitions of notifications and events, and retention's state.

Lists every range with its estimated rows and size (notifications and events together) and the rows
outside every range (the default partition). ``--maintain`` runs the beat job ``notifier.partitions``
now: partitions created ahead, expired ones dropped, and those past retention but kept are named with
their unfinished rows (docs/operations.md "Retention").
"""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.notifications import partitions


class Command(BaseCommand):
    help = "List the notification partitions (and with --maintain create ahead and drop expired ones now)."

    def add_arguments(self, parser):
        parser.add_argument("--maintain", action="store_true",
                            help="Create partitions ahead and drop the expired ones now, as the beat job does.")

    def handle(self, *args, **opts):
        if not partitions.is_partitioned():
            raise CommandError("notifications are not partitioned: run `manage.py migrate` first")
        if opts["maintain"]:
            report = partitions.maintain()
            self.stdout.write(f"created: {', '.join(report['created']) or '-'}")
            self.stdout.write(f"dropped: {', '.join(report['dropped']) or '-'}")
            for name, unfinished in report["kept"].items():
                what = ", ".join(f"{count} {status}" for status, count in sorted(unfinished.items()))
                self.stdout.write(self.style.WARNING(f"kept past retention: {name} ({what})"))
        retention = settings.NOTIFIER_RETENTION_SECONDS
        self.stdout.write(f"interval {settings.NOTIFIER_PARTITION_INTERVAL:.0f} s, "
                          f"retention {'off' if retention <= 0 else f'{retention:.0f} s'}")
        self.stdout.write(f"{'partition':<48} {'from (UTC)':<20} {'to (UTC)':<20} {'rows~':>12} {'MB':>9}")
        for row in partitions.describe():
            start = "default" if row["default"] else (row["from"].strftime("%Y-%m-%d %H:%M:%S") if row["from"]
                                                      else "-")
            end = "" if row["default"] else row["to"].strftime("%Y-%m-%d %H:%M:%S")
            self.stdout.write(f"{row['name']:<48} {start:<20} {end:<20} {row['rows_estimate']:>12} "
                              f"{row['bytes'] / 1e6:>9.1f}")
        stray = partitions.stray_rows()
        if stray:
            self.stdout.write(self.style.WARNING(f"{stray} notifications outside every range (default partition): "
                                                 "they move into their partition when beat creates it"))
