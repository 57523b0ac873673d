from django.core.management.base import BaseCommand, CommandError

from apps.apikeys.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by its prefix."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix, **options):
        if not api_key_revoke(prefix=prefix):
            raise CommandError(f"No active API key with prefix {prefix!r}")
        self.stdout.write(f"Revoked API key {prefix}")
