"""Categories: defaults created by a data migration, and a short per-process cache."""
from __future__ import annotations

import time

from .models import Category, Priority

DEFAULT_CATEGORIES = (
    # slug, default priority, allow opt-out, quiet hours apply
    ("transactional", Priority.NORMAL, True, False),
    ("marketing", Priority.LOW, True, True),
    ("otp", Priority.HIGH, False, False),
    ("security_alert", Priority.HIGH, False, False),
)

_TTL = 30.0
_cache: dict[str, Category | None] = {}
_loaded_at = 0.0


def ensure_default_categories(model=Category) -> None:
    for slug, priority, opt_out, quiet in DEFAULT_CATEGORIES:
        model.objects.get_or_create(
            slug=slug,
            defaults={"name": slug.replace("_", " ").title(), "default_priority": priority,
                      "allow_opt_out": opt_out, "quiet_hours_apply": quiet},
        )


def category_get(slug: str, *, now=time.monotonic) -> Category | None:
    """The category with ``slug`` or None; all categories are reloaded every 30 s."""
    global _loaded_at
    if now() - _loaded_at > _TTL or (slug not in _cache and now() - _loaded_at > 1.0):
        _cache.clear()
        _cache.update({c.slug: c for c in Category.objects.all()})
        _loaded_at = now()
    return _cache.get(slug)


def clear_cache() -> None:
    global _loaded_at
    _cache.clear()
    _loaded_at = 0.0
