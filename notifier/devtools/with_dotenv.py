"""Run a command with the project's dotenv under the environment.

    python -m notifier.devtools.with_dotenv COMMAND [ARG ...]

`make run` starts honcho this way, so the Procfile's own ``${VARIABLES}`` (ports, pools,
concurrency) see the values of ``.env`` (or ``NOTIFIER_DOTENV``) just as every process's settings
do. The real environment wins, as in config/settings/base.py: ``DEBUG=0 make run`` runs with DEBUG off
whatever ``.env`` says.
"""
from __future__ import annotations

import os
import sys

from notifier.env import load_project_dotenv


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m notifier.devtools.with_dotenv COMMAND [ARG ...]")
    load_project_dotenv()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
