from django.core.management.base import BaseCommand, CommandError

from apps.apikeys.models import SCOPES
from apps.apikeys.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scopes", nargs="*", default=[], help=f"Any of: {', '.join(SCOPES)}. Default: all.")
        parser.add_argument("--channels", nargs="*", default=[], help="Restrict to these channels. Default: all.")
        parser.add_argument("--rate", type=float, default=None,
                            help="Requests per second (0: unlimited). Default: NOTIFIER_API_RATE.")
        parser.add_argument("--burst", type=int, default=None, help="Burst size. Default: NOTIFIER_API_BURST.")

    def handle(self, *args, name, scopes, channels, rate=None, burst=None, **options):
        scopes = [s for item in scopes for s in item.split(",") if s]
        channels = [c for item in channels for c in item.split(",") if c]
        try:
            issued = api_key_create(name=name, scopes=scopes, allowed_channels=channels, rate_limit=rate,
                                    rate_burst=burst)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(issued.raw)
        self.stderr.write(
            f"Created API key {name!r} (prefix {issued.api_key.prefix}, scopes: {', '.join(scopes) or 'all'}). "
            "Store it now: it is not shown again."
        )
