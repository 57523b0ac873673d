"""SSRF guard for outbound requests to client-supplied URLs (webhook and Web Push endpoints).

A host is allowed only if every address it resolves to is public (global
unicast): loopback, private, link-local (cloud metadata at 169.254.169.254),
carrier-grade NAT, multicast, reserved and unspecified addresses are refused
unless ``allow_private``. The check runs at registration and again on every
connection, against the very address the socket connects to, so a DNS answer
that changes after registration (DNS rebinding) cannot reach an internal host.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpcore


class UnsafeAddress(httpcore.ConnectError):
    """The host resolves to an address outbound requests may not reach."""


class UnsafeURL(ValueError):
    """The URL cannot be used as an outbound endpoint."""


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal IP resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    return addresses


def checked_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolved addresses of ``host``; raises ``UnsafeAddress`` if any of them is not public."""
    try:
        addresses = resolve(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
    if not addresses:
        raise httpcore.ConnectError(f"{host!r} has no address")
    if not allow_private:
        refused = [a for a in addresses if not address_allowed(a)]
        if refused:
            raise UnsafeAddress(f"{host!r} resolves to a non-public address ({refused[0]}); refused")
    return addresses


def validate_url(url: str, *, allow_private: bool) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is an http(s) URL whose host resolves only to allowed addresses."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"Not a valid URL: {exc}.") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Only http and https URLs are allowed.")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURL("Credentials in the URL are not allowed.")
    try:
        checked_addresses(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                          allow_private=allow_private)
    except UnsafeAddress as exc:
        raise UnsafeURL(
            f"The host resolves to a private, loopback or otherwise non-public address ({exc}).") from exc
    except httpcore.ConnectError as exc:
        raise UnsafeURL(f"The host cannot be resolved ({exc}).") from exc


def _literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def validate_push_endpoint(url: str, *, allow_private: bool, resolve: bool = True) -> None:
    """Raise ``UnsafeURL`` unless ``url`` can be a Web Push endpoint: https (plain http only with
    ``allow_private``, for local push services in development and tests), no credentials, and a
    host whose addresses are all public.

    ``resolve=False`` skips the DNS lookup (where it must not block, as when notifications are
    accepted): literal addresses and ``localhost`` names are still refused, and the send resolves
    and checks the host right before it connects.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise UnsafeURL(f"Not a valid URL: {exc}.") from exc
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise UnsafeURL("The endpoint must be an https URL.")
    host = parts.hostname or ""
    if not host:
        raise UnsafeURL("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURL("Credentials in the URL are not allowed.")
    if allow_private:
        return
    literal = _literal_address(host)
    if literal is not None:
        if not address_allowed(literal):
            raise UnsafeURL("The endpoint's host is a private, loopback or otherwise non-public address.")
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeURL("The endpoint's host is a private, loopback or otherwise non-public address.")
    if resolve:
        try:
            checked_addresses(host, parts.port or 443, allow_private=False)
        except UnsafeAddress as exc:
            raise UnsafeURL("The endpoint's host resolves to a private, loopback or otherwise "
                            "non-public address.") from exc
        except httpcore.ConnectError as exc:
            raise UnsafeURL("The endpoint's host cannot be resolved.") from exc


class GuardedBackend(httpcore.SyncBackend):
    """httpcore network backend that connects only to checked addresses (TLS still verifies the host name)."""

    def __init__(self, *, allow_private: bool = False):
        self.allow_private = allow_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = checked_addresses(host, port, allow_private=self.allow_private)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                           socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error  # type: ignore[misc]
