from django.core.management.base import BaseCommand, CommandError

from apps.apikeys.models import DEFAULT_PROJECT, SCOPES
from apps.apikeys.services import api_key_create, project_get_or_create


class Command(BaseCommand):
    help = "Create an API key and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scopes", nargs="*", default=[], help=f"Any of: {', '.join(SCOPES)}. Default: all.")
        parser.add_argument("--channels", nargs="*", default=[], help="Restrict to these channels. Default: all.")
        parser.add_argument("--rate", type=float, default=None,
                            help="Requests per second (0: unlimited). Default: NOTIFIER_API_RATE.")
        parser.add_argument("--burst", type=int, default=None, help="Burst size. Default: NOTIFIER_API_BURST.")
        parser.add_argument("--project", default=DEFAULT_PROJECT,
                            help="The project (slug) whose objects the key sees and changes; made if new. "
                                 f"Default: {DEFAULT_PROJECT}.")

    def handle(self, *args, name, scopes, channels, rate=None, burst=None, project=DEFAULT_PROJECT, **options):
        scopes = [s for item in scopes for s in item.split(",") if s]
        channels = [c for item in channels for c in item.split(",") if c]
        try:
            owner, created = project_get_or_create(project)
            issued = api_key_create(name=name, scopes=scopes, allowed_channels=channels, rate_limit=rate,
                                    rate_burst=burst, project=owner)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(issued.raw)
        if created:
            self.stderr.write(f"Created project {owner.slug!r}.")
        self.stderr.write(
            f"Created API key {name!r} (prefix {issued.api_key.prefix}, project {owner.slug}, "
            f"scopes: {', '.join(scopes) or 'all'}). Store it now: it is not shown again."
        )
