"""The express lane of ``POST /api/v1/notifications/{channel}/``: the common request without Django's
request cycle.

A single create through Django costs about 2.2 ms of web-process CPU, most of it in what every
request pays (the WSGI environ, middleware, DRF's request, negotiation, authentication, permission
and throttle classes, the response and its rendering) and in the hand-offs between the event loop,
a request thread and the group committer. This lane answers the request that needs none of that
machinery, on the event loop, and hands it to the group committer as it is:

1. here, on the loop: the request must be a plain one (JSON body, no ``Idempotency-Key``, an
   ``Accept`` the JSON renderer serves, an allowed host, a key already in this process's key
   cache with the scope and the channel);
2. in the committer thread, with the rest of its group: validation (the batch path's validator,
   one recipient query for the group), the key's throttle (one Redis round trip for the group),
   the acceptance policy, the insert and the confirmed publish (``groupcommit.py``);
3. here again: the 202, with the headers Django's answer carries (``tests/app/test_express_create.py``
   compares the two), and the request's metrics.

Everything else is declined and goes to Django with the same body: errors of any kind (400, 401,
403, 404, 413, 415, 429), a key not cached yet, idempotent requests, HTTPS redirects. So an answer
other than the 202 is always Django's own. ``NOTIFIER_EXPRESS_CREATE=0`` turns the lane off.
"""
from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from apps.api import errors
from notifier import metrics
from notifier.context import clean_request_id, new_request_id

from ..intake.groupcommit import group_committer
from ..intake.tickets import ExpressTicket
from ..models import API_CHANNELS

logger = logging.getLogger(__name__)

WRITE_SCOPE = "notifications:write"
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8")



class ExpressCreate:
    """Called by ``config.hybrid.HybridApp`` for requests ``match`` accepts."""

    def __init__(self):
        from django.urls import resolve

        from .views import NotificationResourceView

        self.paths = {f"/api/v1/notifications/{channel}/": str(channel) for channel in API_CHANNELS}
        self.route = resolve(next(iter(self.paths))).route  # the label MetricsMiddleware gives these requests
        view = NotificationResourceView
        allow = ", ".join(m.upper() for m in view.http_method_names
                          if hasattr(view, m) or (m == "head" and hasattr(view, "get")))
        self.base_headers = [(b"content-type", b"application/json"), (b"allow", allow.encode("latin1"))]
        # Django's security headers for a plain and a secure request (None: Django redirects it).
        self.security_headers = {secure: _security_headers(next(iter(self.paths)), secure)
                                 for secure in (False, True)}
        proxy = settings.SECURE_PROXY_SSL_HEADER
        self.proxy_header = None
        if proxy:
            name = proxy[0].removeprefix("HTTP_").lower().replace("_", "-").encode("latin1")
            self.proxy_header = (name, proxy[1])
        self.use_forwarded_host = settings.USE_X_FORWARDED_HOST
        self.disallowed_agents = bool(settings.DISALLOWED_USER_AGENTS)
        self._hosts: dict[bytes, bool] = {}
        self._accepts: dict[bytes, bool] = {b"*/*": True, b"application/json": True}
        self.timeout = 60.0
        from apps.api.renderers import JSONRenderer

        self.renderer = JSONRenderer()  # the API's renderer; it keeps no state between answers

    def match(self, scope: dict) -> str | None:
        """The channel of a single create this lane may answer, or None."""
        if scope["method"] != "POST" or scope["query_string"] or scope.get("root_path"):
            return None
        return self.paths.get(scope["path"])

    async def handle(self, scope: dict, body: bytes, channel: str) -> tuple[int, list, bytes] | None:
        """(status, headers, body) of the answer, or None: Django answers this request."""
        started = time.perf_counter()
        request = self._plain_request(scope)
        if request is None:
            return None
        api_key, request_id, secure = request
        if not api_key.allows_channel(channel) or not api_key.has_scope(WRITE_SCOPE):
            return None
        security = self.security_headers[secure]
        if security is None:
            return None
        from apps.api.parsers import parse_json

        try:
            item = parse_json(body)
        except Exception:  # noqa: BLE001 - Django's parser answers it (400)
            return None
        if type(item) is not dict or "topic" in item:  # a broadcast (apps.broadcasts) goes through Django
            return None
        committer = group_committer()
        if committer is None:
            return None
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        committer.submit_express(ExpressTicket(item=item, channel=channel, api_key=api_key,
                                               request_id=request_id, future=future))
        # A timer on the future itself (asyncio.wait_for wraps it in a task of its own: a request's worth of
        # the loop's time more); a client that goes away cancels the future with this request's task.
        timer = loop.call_later(self.timeout, _time_out, future)
        try:
            ticket = await future
        except asyncio.TimeoutError:  # the database hangs (a network partition): as an outage, 503
            logger.error("the group committer did not answer in time", extra={"request_id": request_id})
            return self._unavailable(security, request_id, started)
        finally:
            timer.cancel()
        if ticket.declined:
            return None
        if ticket.error is not None:  # logged by the committer; Django would answer the same (apps/api/errors.py)
            if errors.is_unavailable(ticket.error):
                return self._unavailable(security, request_id, started)
            return self._server_error(security, request_id, started)
        return self._accepted(ticket.result[0], security, request_id, started)

    def _plain_request(self, scope: dict) -> tuple[Any, str, bool] | None:
        """(api key, request id, secure) of a request this lane may answer, from its headers."""
        from apps.apikeys.services import api_key_cached

        authorization = content_type = host = request_id = forwarded = None
        secure = scope.get("scheme") == "https"
        proxy = self.proxy_header
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-type":
                content_type = value
            elif name == b"accept":
                if not self._accepts_json(value):
                    return None
            elif name == b"host":
                host = value
            elif name == b"x-request-id":
                request_id = value
            elif name == b"idempotency-key":
                return None
            elif name == b"x-forwarded-host" and self.use_forwarded_host:
                forwarded = value
            elif name == b"user-agent" and self.disallowed_agents:
                return None
            elif proxy is not None and name == proxy[0]:
                secure = value.decode("latin1").split(",", 1)[0].strip() == proxy[1]
        if content_type is None or content_type.strip().lower() not in _JSON_TYPES:
            return None
        if authorization is None or not self._host_allowed(forwarded or host):
            return None
        scheme, _, raw_key = authorization.decode("latin1").partition(" ")
        if scheme.lower() != "bearer" or not raw_key or " " in raw_key.strip():
            return None
        api_key = api_key_cached(raw_key.strip())
        if api_key is None:
            return None
        request_id = clean_request_id(request_id.decode("latin1")) if request_id else None
        return api_key, request_id or new_request_id(), secure

    def _accepts_json(self, accept: bytes) -> bool:
        """Whether DRF's negotiation answers ``accept`` with the JSON renderer as ``application/json``: clients
        send ``*/*`` (curl, httpx, requests, aiohttp), nothing (wrk), or lists such as axios's
        ``application/json, text/plain, */*``. Asked of DRF once per distinct value."""
        accepted = self._accepts.get(accept)
        if accepted is None:
            accepted = _drf_answers_json(accept.decode("latin1"))
            if len(self._accepts) < 1000:  # Accept values come from clients: keep the cache bounded
                self._accepts[accept] = accepted
        return accepted

    def _host_allowed(self, host: bytes | None) -> bool:
        """Django's ``request.get_host()`` check (CommonMiddleware asks it of every request)."""
        if host is None:
            return False
        allowed = self._hosts.get(host)
        if allowed is None:
            domain, _ = split_domain_port(host.decode("latin1"))
            hosts = settings.ALLOWED_HOSTS
            if settings.DEBUG and not hosts:
                hosts = [".localhost", "127.0.0.1", "[::1]"]
            allowed = bool(domain) and validate_host(domain, hosts)
            if len(self._hosts) < 1000:  # host names come from clients: keep the cache bounded
                self._hosts[host] = allowed
        return allowed

    def _accepted(self, notification, security: list, request_id: str, started: float) -> tuple[int, list, bytes]:
        from .views import accepted_body, notification_location

        location = (b"location", notification_location(notification).encode("latin1"))
        return self._answer(202, accepted_body(notification), [*self.base_headers, location], security,
                            request_id, started)

    def _server_error(self, security: list, request_id: str, started: float) -> tuple[int, list, bytes]:
        """What Django's handler500 answers (``errors.json_server_error``)."""
        data = {"errors": {"detail": ["Internal server error."]}, "detail": "Internal server error."}
        return self._answer(500, data, [(b"content-type", b"application/json")], security, request_id, started)

    def _unavailable(self, security: list, request_id: str, started: float) -> tuple[int, list, bytes]:
        """What Django answers when a dependency is down (``errors.ServiceUnavailableMiddleware``)."""
        headers = [(b"content-type", b"application/json"), (b"retry-after", str(errors.RETRY_AFTER_SECONDS).encode())]
        return self._answer(503, errors.service_unavailable_body(), headers, security, request_id, started)

    def _answer(self, status: int, data: dict, headers: list, security: list, request_id: str,
                started: float) -> tuple[int, list, bytes]:
        body = self.renderer.render(data)
        headers = [*headers, (b"content-length", str(len(body)).encode()), *security,
                   (b"x-request-id", request_id.encode("latin1"))]
        metrics.http_request("POST", self.route, status, time.perf_counter() - started)
        return status, headers, body


def _time_out(future) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


def _drf_answers_json(accept: str) -> bool:
    """DRF's content negotiation for the API's one renderer, asked directly."""
    from types import SimpleNamespace

    from rest_framework.exceptions import NotAcceptable
    from rest_framework.negotiation import DefaultContentNegotiation

    from apps.api.renderers import JSONRenderer

    renderer = JSONRenderer()
    request = SimpleNamespace(query_params={}, META={"HTTP_ACCEPT": accept}, headers={"accept": accept})
    try:
        chosen, media_type = DefaultContentNegotiation().select_renderer(request, [renderer])
    except NotAcceptable:
        return False
    return chosen is renderer and media_type == "application/json"


def _security_headers(path: str, secure: bool) -> list[tuple[bytes, bytes]] | None:
    """The headers Django's SecurityMiddleware and XFrameOptionsMiddleware add to an answer to a
    POST of ``path`` (plain or secure), found by running them once; None if Django would redirect it."""
    from django.core.handlers.wsgi import WSGIRequest
    from django.http import HttpResponse
    from django.middleware.clickjacking import XFrameOptionsMiddleware
    from django.middleware.security import SecurityMiddleware

    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
    environ = {"REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
               "SERVER_NAME": host, "SERVER_PORT": "443" if secure else "80", "HTTP_HOST": host,
               "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "https" if secure else "http"}
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if secure and proxy:
        environ[proxy[0]] = proxy[1]
    chain = SecurityMiddleware(XFrameOptionsMiddleware(lambda request: HttpResponse()))
    try:
        response = chain(WSGIRequest(environ))
    except Exception:  # noqa: BLE001 - whatever Django makes of it, it is not this lane's to answer
        return None
    if response.status_code != 200:
        return None
    bare = set(HttpResponse().headers)
    return [(name.lower().encode("latin1"), value.encode("latin1"))
            for name, value in response.headers.items() if name not in bare]


def express_create() -> ExpressCreate | None:
    """The lane, or None when ``NOTIFIER_EXPRESS_CREATE`` is off."""
    if not settings.NOTIFIER_EXPRESS_CREATE:
        return None
    return ExpressCreate()
