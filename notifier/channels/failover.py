"""Send a batch of messages through an ordered list of providers.

On a transient error a message moves on to the next provider that accepts it
(push providers accept by device platform); a permanent error stops it. A
provider whose circuit breaker is open is skipped without a call. Each outcome
keeps the whole path it took.

A message that no provider was allowed to try (every breaker open) ends
``attempted=False`` with ``retry_at``: the time the first of those breakers
half-opens. The caller makes it wait until then without spending a retry.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

from notifier.interrupts import INTERRUPTS

from .base import Message, Provider, ProviderError

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    provider: str
    message_id: str | None = None
    error: ProviderError | None = None
    path: list[tuple[str, str]] = field(default_factory=list)  # (provider, "accepted" | error text)
    attempted: bool = True  # some provider was actually called for this message
    retry_at: float | None = None  # epoch seconds: when an open breaker on its path half-opens

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def circuit_wait(self) -> bool:
        """Not tried at all because every provider's circuit was open."""
        return self.error is not None and not self.attempted and self.retry_at is not None

    def describe(self) -> str:
        if len(self.path) == 1:  # the common case, one provider: no generator
            name, what = self.path[0]
            return f"{name}: {what}"
        return "; ".join(f"{name}: {what}" for name, what in self.path)


def _call(provider: Provider, messages: list[Message]) -> list[str | ProviderError]:
    """``provider.send_many``, with anything unexpected turned into transient errors."""
    try:
        results = provider.send_many(messages)
    except ProviderError as exc:
        return [exc] * len(messages)
    except INTERRUPTS:
        raise  # the task's time is up (notifier.interrupts): not a provider failure
    except Exception as exc:  # noqa: BLE001 - a provider bug must not lose the chunk
        logger.exception("provider %s raised", provider.name)
        return [ProviderError(f"{provider.name} failed: {exc.__class__.__name__}: {exc}")] * len(messages)
    if len(results) != len(messages):  # pragma: no cover - a provider contract violation
        return [ProviderError(f"{provider.name} returned {len(results)} results for {len(messages)} messages")] \
            * len(messages)
    return results


def _health(results: list[str | ProviderError]) -> list[bool | None]:
    """What the breaker records: True accepted, False a transient failure, None a permanent error (the
    provider answered). A ``bad_input`` error (the message itself is unusable) says nothing about the
    provider and is left out: a client's malformed messages can neither open nor close a breaker."""
    return [True if not isinstance(r, ProviderError) else None if r.permanent else False
            for r in results if not isinstance(r, ProviderError) or not r.bad_input]


def _last_transient(results: list[str | ProviderError]) -> str:
    for r in reversed(results):
        if isinstance(r, ProviderError) and not r.permanent:
            return str(r)
    return ""


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")


def send_with_failover(providers: Sequence[Provider], messages: Sequence[Message], breaker=None) -> list[Outcome]:
    """Send ``messages`` and return one ``Outcome`` per message, in order.

    ``breaker`` (a ``notifier.circuit.CircuitBreaker`` or None) is asked before
    each provider is called and told the results after.
    """
    count = len(messages)
    outcomes: list[Outcome | None] = [None] * count
    paths: list[list[tuple[str, str]]] = [[] for _ in messages]
    last_error: dict[int, tuple[str, ProviderError]] = {}
    waits: dict[int, tuple[str, float]] = {}
    pending = list(range(count))

    def wait(indexes: list[int], name: str, until: float) -> None:
        for i in indexes:
            paths[i].append((name, f"circuit open, waiting until {_when(until)}"))
            if i not in waits or until < waits[i][1]:
                waits[i] = (name, until)

    for provider in providers:
        if not pending:
            break
        if type(provider).accepts is Provider.accepts:  # takes every message: no call per message
            mine = list(pending)
        else:
            mine = [i for i in pending if provider.accepts(messages[i])]
        if not mine:
            continue
        channel = provider.channel or messages[mine[0]].channel
        results: dict[int, str | ProviderError] = {}
        batches = [mine]
        guard = breaker if provider.uses_breaker else None
        if guard is not None:
            permit = guard.permit(channel, provider.name)
            if not permit.allowed:
                wait(mine, provider.name, permit.retry_at or time.time())
                continue
            if permit.probe and len(mine) > 1:
                batches = [mine[:1], mine[1:]]  # half-open: one message first
        for number, batch in enumerate(batches):
            if number > 0:
                permit = guard.permit(channel, provider.name)
                if not permit.allowed:
                    wait(batch, provider.name, permit.retry_at or time.time())
                    continue
            batch_results = _call(provider, [messages[i] for i in batch])
            if guard is not None:
                health = _health(batch_results)
                guard.record(channel, provider.name, health, _last_transient(batch_results))
                if permit.probe and not health:
                    # The probe's message was unusable and proved nothing: let the next call probe.
                    guard.release_probe(channel, provider.name)
            results.update(zip(batch, batch_results))
        still_pending = []
        for index in pending:
            if index not in results:
                still_pending.append(index)
                continue
            result = results[index]
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
        retry_at = waits[index][1] if index in waits else None
        if index in last_error:
            name, error = last_error[index]
            outcomes[index] = Outcome(name, error=error, path=paths[index], retry_at=retry_at)
        elif index in waits:
            name, until = waits[index]
            error = ProviderError(f"circuit open for every provider; waiting until {_when(until)}",
                                  code="circuit_open")
            outcomes[index] = Outcome(name, error=error, path=paths[index], attempted=False, retry_at=until)
        else:
            message = messages[index]
            what = f"{message.channel} platform {message.platform!r}" if message.platform else message.channel
            error = ProviderError(f"no configured provider can send {what}", permanent=True, code="no_provider")
            paths[index].append(("", str(error)))
            outcomes[index] = Outcome("", error=error, path=paths[index], attempted=False)
    return [o for o in outcomes if o is not None]
