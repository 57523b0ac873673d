from django.core.management.base import BaseCommand, CommandError

from apps.notifications.models import Channel, Status
from apps.notifications.services import failed_notifications, notifications_requeue, parse_since


class Command(BaseCommand):
    help = "Requeue notifications from the database (with a fresh retry budget; history is kept)."

    def add_arguments(self, parser):
        parser.add_argument("--status", required=True, choices=[Status.FAILED])
        parser.add_argument("--since", help="ISO 8601 time or a duration such as 30m, 2h, 1d.")
        parser.add_argument("--channel", choices=Channel.values)
        parser.add_argument("--limit", type=int)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, status, since=None, channel=None, limit=None, dry_run=False, **options):
        try:
            since_at = parse_since(since) if since else None
        except ValueError as exc:
            raise CommandError(f"--since: {exc}") from exc
        qs = failed_notifications(since=since_at, channel=channel)
        if limit:
            qs = qs[:limit]
        rows = list(qs.values_list("id", "channel", "attempts", "last_error"))
        for notification_id, row_channel, attempts, last_error in rows:
            verb = "would requeue" if dry_run else "requeue"
            self.stdout.write(f"{verb} {notification_id} channel={row_channel} attempts={attempts} "
                              f"last_error={last_error!r}")
        if dry_run:
            self.stdout.write(f"Dry run: {len(rows)} failed notification(s) would be requeued; nothing changed.")
            return
        count = 0
        for start in range(0, len(rows), 1000):
            count += notifications_requeue(ids=[r[0] for r in rows[start:start + 1000]],
                                           detail="replayed by manage.py replay")
        self.stdout.write(f"Requeued {count} failed notification(s).")
