"""One canonical form per address, so the suppression list matches across channels and spellings."""
from __future__ import annotations

import json


def web_push_endpoint(token: str) -> str | None:
    """The endpoint of a Push API subscription JSON, or None when ``token`` is not one."""
    text = (token or "").strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    endpoint = value.get("endpoint") if isinstance(value, dict) else None
    return endpoint if isinstance(endpoint, str) and endpoint else None


def push_platform(token: str, platform: str = "") -> str:
    """A device's platform; for a bare token, ``web`` if it is a subscription JSON, else ``android``."""
    if platform:
        return platform
    return "web" if web_push_endpoint(token) else "android"


def canonical_address(channel: str, address: str) -> str:
    """Email addresses lower-cased, web push subscriptions by endpoint, the rest trimmed."""
    address = (address or "").strip()
    if channel == "email":
        return address.lower()
    if channel == "push":
        return web_push_endpoint(address) or address
    return address
