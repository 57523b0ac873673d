"""Typed environment-variable readers for settings.

Every reader raises ``ImproperlyConfigured`` on a malformed value instead of
silently falling back, so a typo in a deployment fails at start-up.
"""
from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def dotenv_path() -> Path:
    """The dotenv file every process reads: ``NOTIFIER_DOTENV`` if set, else ``.env`` at the project root."""
    return Path(os.environ.get("NOTIFIER_DOTENV") or PROJECT_ROOT / ".env")


def load_project_dotenv() -> Path:
    """Load the project's dotenv (see ``dotenv_path``) without overriding the environment.

    Django's settings call it, and so does every process that reads the environment before (or
    without) Django's settings: gunicorn's config, Flower's config, the Procfile through ``make run``
    (notifier.devtools.with_dotenv). Each of them then sees the same values.
    """
    path = dotenv_path()
    load_dotenv(path)
    return path


def load_dotenv(path: Path) -> None:
    """Load KEY=VALUE lines from ``path`` into os.environ without overriding."""
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def env_str(name: str, default: str | None = None) -> str | None:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r}: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def debug_enabled() -> bool:
    """DEBUG, off by default: read here for Django's settings and for gunicorn's config, which runs before them."""
    return env_bool("DEBUG", False)


def log_format() -> str:
    """LOG_FORMAT: ``plain`` by default when DEBUG is on, ``json`` when it is off (settings and gunicorn)."""
    return env_str("LOG_FORMAT", "plain" if debug_enabled() else "json")
