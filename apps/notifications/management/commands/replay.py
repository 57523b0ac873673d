from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from apps.notifications.commands import notifications_requeue
from apps.notifications.models import Channel, Status
from apps.notifications.selectors import failed_notifications
from apps.providers.checks import suppressions_stopping
from apps.providers.models import OPT_OUT_REASONS
from apps.providers.services import suppressions_lift

SKIPPED = "address on the suppression list (use --unsuppress to lift the entry and send)"
OPTED_OUT = "the recipient opted out (unsubscribed, or STOP at the carrier); --unsuppress does not lift an opt-out"
CHUNK = 1000


def parse_since(value: str) -> datetime:
    """``--since`` accepts an ISO 8601 time or a duration like 30m, 2h, 1d."""
    value = value.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return timezone.now() - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    parsed = datetime.fromisoformat(value)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class Command(BaseCommand):
    help = ("Requeue notifications from the database (with a fresh retry budget; history is kept). "
            "Those whose address is on the suppression list are skipped, and said so, unless --unsuppress.")

    def add_arguments(self, parser):
        parser.add_argument("--status", required=True, choices=[Status.FAILED])
        parser.add_argument("--since", help="ISO 8601 time or a duration such as 30m, 2h, 1d.")
        parser.add_argument("--channel", choices=Channel.values)
        parser.add_argument("--limit", type=int)
        parser.add_argument("--unsuppress", action="store_true",
                            help="Lift the suppression entries (bounces, invalid numbers, dead devices, manual "
                                 "entries) that stop a notification, and send it. Opt-outs are never lifted.")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, status, since=None, channel=None, limit=None, unsuppress=False, dry_run=False,
               **options):
        try:
            since_at = parse_since(since) if since else None
        except ValueError as exc:
            raise CommandError(f"--since: {exc}") from exc
        qs = failed_notifications(since=since_at, channel=channel)
        if limit:
            qs = qs[:limit]
        rows = [SimpleNamespace(**row) for row in qs.values(
            "id", "channel", "to", "category", "attempts", "last_error", "recipient_id", "recipient__email",
            "recipient__phone", "content__device_tokens")]
        for row in rows:
            row.recipient = (SimpleNamespace(email=row.recipient__email, phone=row.recipient__phone)
                             if row.recipient_id else None)
            row.content = {"device_tokens": row.content__device_tokens} if row.content__device_tokens else {}

        # What the check before sending would stop (one query), so it is said here, not found later
        # as a silent `suppressed`.
        stopping = suppressions_stopping(rows)
        lift: dict = {}      # notification id -> the entries to lift
        skipped: dict = {}   # notification id -> why
        for notification_id, entries in stopping.items():
            if any(e.reason in OPT_OUT_REASONS for e in entries):
                skipped[notification_id] = OPTED_OUT
            elif unsuppress:
                lift[notification_id] = entries
            else:
                skipped[notification_id] = SKIPPED

        would = "would " if dry_run else ""
        for row in rows:
            entries = stopping.get(row.id)
            if row.id in skipped:
                self.stdout.write(f"{would}skip {row.id} channel={row.channel}: suppressed "
                                  f"({'; '.join(_describe(e) for e in entries)})")
                continue
            if row.id in lift:
                self.stdout.write(f"{would}lift the suppression of {row.id} "
                                  f"({'; '.join(_describe(e) for e in entries)})")
            self.stdout.write(f"{would}requeue {row.id} channel={row.channel} attempts={row.attempts} "
                              f"last_error={row.last_error!r}")

        for reason in (SKIPPED, OPTED_OUT):
            count = sum(1 for why in skipped.values() if why == reason)
            if count:
                self.stdout.write(f"{count} skipped: {reason}.")
        entry_ids = {e.id for entries in lift.values() for e in entries}
        to_requeue = [row.id for row in rows if row.id not in skipped and row.id not in lift]
        if dry_run:
            if lift:
                self.stdout.write(f"Dry run: {_plural(len(entry_ids), 'suppression entry', 'suppression entries')} "
                                  f"would be lifted.")
            self.stdout.write(f"Dry run: {len(to_requeue) + len(lift)} failed notification(s) would be requeued; "
                              "nothing changed.")
            return

        count = lifted = 0
        with transaction.atomic():
            if lift:
                lifted = suppressions_lift(ids=entry_ids, by="manage.py replay --unsuppress")
                by_reasons: dict[str, list] = {}  # each notification's event names what was lifted for it
                for notification_id, entries in lift.items():
                    reasons = ", ".join(sorted({e.get_reason_display() for e in entries}))
                    by_reasons.setdefault(reasons, []).append(notification_id)
                for reasons, ids in by_reasons.items():
                    count += self._requeue(ids, f"replayed by manage.py replay --unsuppress "
                                                f"(suppression lifted: {reasons})")
            count += self._requeue(to_requeue, "replayed by manage.py replay")
        if lift:
            self.stdout.write(f"Lifted {_plural(lifted, 'suppression entry', 'suppression entries')}.")
        self.stdout.write(f"Requeued {count} failed notification(s).")

    @staticmethod
    def _requeue(ids: list, detail: str) -> int:
        return sum(notifications_requeue(ids=ids[start:start + CHUNK], detail=detail)
                   for start in range(0, len(ids), CHUNK))


def _describe(entry) -> str:
    since = entry.created_at.date().isoformat() if entry.created_at else ""
    scope = f" for {entry.category}" if entry.category else ""
    return f"{entry.get_reason_display()}{scope} since {since}"
