"""Locale tags: normalisation (``pt_br`` → ``pt-BR``) and the fallback chain (``pt-BR`` → ``pt`` → default)."""
from __future__ import annotations

import re

LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def is_valid_locale(value: str) -> bool:
    return bool(LOCALE_RE.match(value or ""))


def normalize_locale(value: str) -> str:
    """BCP 47 casing: language lower, script title, region upper (``zh_hant_tw`` → ``zh-Hant-TW``)."""
    value = (value or "").strip()
    if not value:
        return ""
    parts = re.split(r"[-_]", value)
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) == 2 and part.isalpha() or len(part) == 3 and part.isdigit():
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def fallback_chain(locale: str) -> list[str]:
    """Locales to try, most specific first, ending with the default (``""``)."""
    locale = normalize_locale(locale)
    chain: list[str] = []
    parts = locale.split("-") if locale else []
    while parts:
        chain.append("-".join(parts))
        parts.pop()
    chain.append("")
    return chain
