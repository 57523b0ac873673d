"""What waits on the group committer (``groupcommit.py``): a request thread's validated specs, or an
event loop's unvalidated single create (``api/express.py``)."""
from __future__ import annotations

import threading

from notifier.context import get_request_id


class Ticket:
    """A request thread's validated specs; the thread waits on ``done``."""

    __slots__ = ("specs", "api_key_id", "request_id", "done", "result", "error")
    declined = False

    def __init__(self, specs, api_key_id):
        self.specs = specs
        self.api_key_id = api_key_id
        self.request_id = get_request_id()
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None


class ExpressTicket:
    """One single create from the event loop (``api/express.py``), not yet validated.

    The committer validates ``item`` and takes the key's throttle token with the rest of the group
    (``_prepare``). A request it does not create is ``declined``: invalid, throttled, revoked, or
    anything else that Django's own request path answers (with the same body, untouched here).
    The committer then completes ``future`` on its event loop.
    """

    __slots__ = ("item", "channel", "api_key", "specs", "api_key_id", "project_id", "request_id", "result", "error",
                 "declined", "future")

    def __init__(self, *, item: dict, channel: str, api_key, request_id: str, future):
        self.item = item
        self.channel = channel
        self.api_key = api_key
        self.api_key_id = api_key.pk
        self.project_id = api_key.project_id  # the owner of what it creates; its recipients are looked up there
        self.request_id = request_id
        self.future = future  # an asyncio future of the loop that waits; resolved with this ticket
        self.specs = None
        self.result = None
        self.error: BaseException | None = None
        self.declined = False
