"""Send a batch of messages through an ordered list of providers.

On a transient error a message moves on to the next provider; a permanent
error stops it. Each outcome keeps the whole path it took.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .base import Message, Provider, ProviderError


@dataclass
class Outcome:
    provider: str
    message_id: str | None = None
    error: ProviderError | None = None
    path: list[tuple[str, str]] = field(default_factory=list)  # (provider, "accepted" | error text)

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        return "; ".join(f"{name}: {what}" for name, what in self.path)


def send_with_failover(providers: Sequence[Provider], messages: Sequence[Message]) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(messages)
    paths: list[list[tuple[str, str]]] = [[] for _ in messages]
    last_error: dict[int, tuple[str, ProviderError]] = {}
    pending = list(range(len(messages)))
    for provider in providers:
        if not pending:
            break
        results = provider.send_many([messages[i] for i in pending])
        still_pending = []
        for index, result in zip(pending, results):
            if isinstance(result, ProviderError):
                paths[index].append((provider.name, str(result)))
                last_error[index] = (provider.name, result)
                if result.permanent:
                    outcomes[index] = Outcome(provider.name, error=result, path=paths[index])
                else:
                    still_pending.append(index)
            else:
                paths[index].append((provider.name, "accepted"))
                outcomes[index] = Outcome(provider.name, message_id=result, path=paths[index])
        pending = still_pending
    for index in pending:
        name, error = last_error[index]
        outcomes[index] = Outcome(name, error=error, path=paths[index])
    return [o for o in outcomes if o is not None]
