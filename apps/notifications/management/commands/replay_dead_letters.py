from django.core.management.base import BaseCommand

from apps.notifications.models import Channel
from apps.notifications.commands import notifications_requeue
from apps.notifications.outbox import process_dead_letters


class Command(BaseCommand):
    help = "Move dead letters from notifications.dead back to their priority queues."

    def add_arguments(self, parser):
        parser.add_argument("--channel", choices=Channel.values)
        parser.add_argument("--limit", type=int)
        parser.add_argument("--dry-run", action="store_true", help="Show what would move; change nothing.")

    def handle(self, *args, channel=None, limit=None, dry_run=False, **options):
        replayed = skipped = 0

        def select(letter):
            return channel is None or letter.get("channel") == channel

        def handle(letter):
            nonlocal replayed, skipped
            line = (f"{letter.get('id')} channel={letter.get('channel')} attempts={letter.get('attempts')} "
                    f"last_error={letter.get('last_error')!r}")
            if dry_run:
                self.stdout.write(f"would replay {line}")
                return
            if notifications_requeue(ids=[letter["id"]], detail="replayed from the dead-letter queue"):
                replayed += 1
                self.stdout.write(f"replayed {line}")
            else:
                skipped += 1
                self.stdout.write(f"dropped {line} (no longer failed)")

        handled, left = process_dead_letters(limit=limit, select=select, handle=handle, consume=not dry_run)
        if dry_run:
            self.stdout.write(f"Dry run: {handled} dead letter(s) would be replayed; nothing changed.")
        else:
            self.stdout.write(f"Replayed {replayed} dead letter(s); dropped {skipped} whose notification "
                              f"was no longer failed; {left} left in the queue.")
