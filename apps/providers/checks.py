"""Policy checks (see apps/notifications/policy.py): suppressed addresses are not sent to.

One query per batch: every address of the batch is looked up at once.
"""
from __future__ import annotations

from notifier.addresses import canonical_address, destination

from .selectors import suppression_matching, suppressions_by_address, suppressions_matching


def _addresses(channel: str, to: str, recipient, content: dict) -> list[str]:
    if channel == "push":
        return [canonical_address("push", t) for t in (content or {}).get("device_tokens") or []]
    address = destination(channel, to, recipient) if to or channel in ("email", "sms") else ""
    return [canonical_address(channel, address)] if address else []


def _verdict(addresses: list[str], found, category: str) -> str | None:
    """The reason text when every address is suppressed for ``category``; else None."""
    reasons = []
    for address in addresses:
        row = suppression_matching(found.get(address, []), category)
        if row is None:
            return None
        reasons.append(row)
    if not reasons:
        return None
    row = reasons[0]
    since = row.created_at.date().isoformat() if row.created_at else ""
    return f"suppressed: {row.get_reason_display()} since {since}" + (f" ({row.detail})" if row.detail else "")


def suppressed_at_acceptance(specs, now) -> None:
    wanted = [(spec, _addresses(spec.channel, spec.to, spec.recipient, spec.content)) for spec in specs]
    found = suppressions_by_address(a for _, addresses in wanted for a in addresses)
    if not found:
        return
    for spec, addresses in wanted:
        reason = _verdict(addresses, found, spec.category)
        if reason:
            spec.status = "suppressed"
            spec.status_detail = reason


def suppressed_before_send(notifications, now) -> dict:
    from apps.notifications.policy import Verdict

    # The recipient only matters without a direct address (reading `n.recipient` costs a descriptor call).
    wanted = [(n, _addresses(n.channel, n.to, None if n.to else n.recipient, n.content)) for n in notifications]
    found = suppressions_by_address(a for _, addresses in wanted for a in addresses)
    verdicts = {}
    if found:
        for n, addresses in wanted:
            reason = _verdict(addresses, found, n.category)
            if reason:
                verdicts[n.id] = Verdict("suppressed", reason)
    return verdicts


def suppressions_stopping(notifications) -> dict:
    """``{notification id: [entries]}`` for the notifications the suppression list would stop at
    sending (the same verdict as ``suppressed_before_send``), with every entry that stops each: to
    lift them all. One query. A notification here is anything with ``id``, ``channel``, ``to``,
    ``recipient`` (``email``, ``phone``; None without one), ``content`` and ``category``."""
    wanted = [(n, _addresses(n.channel, n.to, None if n.to else n.recipient, n.content)) for n in notifications]
    found = suppressions_by_address(a for _, addresses in wanted for a in addresses)
    stopping = {}
    if found:
        for n, addresses in wanted:
            if _verdict(addresses, found, n.category):
                stopping[n.id] = [row for a in addresses for row in suppressions_matching(found[a], n.category)]
    return stopping
