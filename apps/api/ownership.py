"""What a request's API key may see, in the form the selectors and writes of every app take it."""
from __future__ import annotations


def key_owner(request) -> dict:
    """What the request's API key may see: ``project_id`` and ``channels`` (its ``allowed_channels``; empty:
    every channel), as the selectors and writes take them. Another owner's objects are not found (404)."""
    key = request.auth
    return {"project_id": key.project_id, "channels": key.allowed_channels or None}
