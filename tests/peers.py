"""Real protocol peers on 127.0.0.1 for provider tests: a Twilio REST API, FCM (token URI and
messages endpoint) and a Web Push endpoint that decrypts what it receives.

Each is a real HTTP server in a thread; worker processes started by a test
reach it over TCP like they would reach the real service.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from requests.structures import CaseInsensitiveDict


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: dict | str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class HttpPeer:
    """A threaded HTTP server; subclasses implement ``handle(received) -> Reply``."""

    def __init__(self):
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self._scripted: list[Reply] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                form = {}
                if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                    form = parse_qs(body.decode(), keep_blank_values=True)
                received = Received(self.command, self.path, CaseInsensitiveDict(self.headers.items()), body, form)
                with peer.lock:
                    peer.requests.append(received)
                    scripted = peer._scripted.pop(0) if peer._scripted else None
                reply = scripted or peer.handle(received)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                data = payload.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, before the normal behaviour."""
        with self.lock:
            self._scripted.extend(replies)

    def handle(self, received: Received) -> Reply:  # pragma: no cover - overridden
        return Reply(404, {"error": "not found"})


# --- Twilio ---------------------------------------------------------------------------

class FakeTwilio(HttpPeer):
    """``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic auth, like Twilio's REST API."""

    def __init__(self, account_sid: str = "AC" + "1" * 32, auth_token: str = "twilio-test-token"):
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.invalid_numbers: set[str] = set()
        self.sids: list[str] = []

    @property
    def messages(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/Messages.json")]

    def authorised(self, received: Received) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return received.headers.get("Authorization") == f"Basic {expected}"

    def handle(self, received: Received) -> Reply:
        if received.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return Reply(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
        if not self.authorised(received):
            return Reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        to = received.form.get("To", [""])[0]
        if to in self.invalid_numbers:
            return Reply(400, {"code": 21211, "message": f"The 'To' number {to} is not a valid phone number.",
                               "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})
        sid = "SM" + secrets.token_hex(16)
        with self.lock:
            self.sids.append(sid)
        return Reply(201, {
            "sid": sid, "account_sid": self.account_sid, "to": to, "from": received.form.get("From", [""])[0],
            "body": received.form.get("Body", [""])[0], "status": "queued", "num_segments": "1",
            "direction": "outbound-api", "api_version": "2010-04-01", "uri": f"/2010-04-01/Accounts/"
            f"{self.account_sid}/Messages/{sid}.json",
        })


# --- FCM -------------------------------------------------------------------------------

def make_service_account(path, token_uri: str, project_id: str = "notifier-test") -> dict:
    """Write a service-account JSON with a freshly generated RSA key; return it (with the public key PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    info = {
        "type": "service_account", "project_id": project_id, "private_key_id": secrets.token_hex(20),
        "private_key": private_pem, "client_email": f"notifier@{project_id}.iam.gserviceaccount.com",
        "client_id": "1234567890", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri, "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
    }
    with open(path, "w") as fh:
        json.dump(info, fh)
    return {**info, "public_pem": public_pem}


GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class FakeFcm(HttpPeer):
    """The service account's token URI (``POST /token``, checks the signed JWT assertion) and
    ``POST /v1/projects/{project}/messages:send`` (checks the bearer token)."""

    def __init__(self):
        super().__init__()
        self.service_account: dict | None = None
        self.issued: set[str] = set()
        self.assertions: list[dict] = []
        self.unregistered: set[str] = set()
        self.token_lifetime = 3600

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def write_credentials(self, path) -> str:
        self.service_account = make_service_account(path, self.token_uri)
        return str(path)

    @property
    def messages(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/messages:send")]

    @property
    def token_requests(self) -> list[Received]:
        return [r for r in self.requests if r.path == "/token"]

    def handle(self, received: Received) -> Reply:
        if received.path == "/token":
            return self._token(received)
        project = self.service_account["project_id"]
        if received.path != f"/v1/projects/{project}/messages:send":
            return Reply(404, {"error": {"code": 404, "message": "no such project", "status": "NOT_FOUND"}})
        auth = received.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.issued:
            return Reply(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                         "status": "UNAUTHENTICATED"}})
        token = received.json()["message"]["token"]
        if token in self.unregistered:
            return Reply(404, {"error": {"code": 404, "message": "Requested entity was not found.",
                                         "status": "NOT_FOUND", "details": [{
                                             "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                             "errorCode": "UNREGISTERED"}]}})
        return Reply(200, {"name": f"projects/{project}/messages/{secrets.randbelow(10**18)}"})

    def _token(self, received: Received) -> Reply:
        import jwt

        form = received.form
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            # google-auth always signs for Google's token endpoint as the audience, whatever token_uri is.
            claims = jwt.decode(form["assertion"][0], self.service_account["public_pem"], algorithms=["RS256"],
                                audience=[self.token_uri, GOOGLE_TOKEN_AUDIENCE])
        except (jwt.PyJWTError, KeyError) as exc:
            return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        if claims.get("iss") != self.service_account["client_email"] or \
                "https://www.googleapis.com/auth/firebase.messaging" not in claims.get("scope", "").split():
            return Reply(400, {"error": "invalid_grant", "error_description": "bad issuer or scope"})
        access = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self.issued.add(access)
            self.assertions.append(claims)
        return Reply(200, {"access_token": access, "expires_in": self.token_lifetime, "token_type": "Bearer"})


# --- Web Push -------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_key() -> tuple[str, str]:
    """A fresh VAPID key pair: (private key as base64url raw, public key as base64url uncompressed point)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = _b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    public = _b64url(key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint))
    return private, public


class WebPushEndpoint(HttpPeer):
    """A push service: ``POST /push/{id}`` for subscriptions it made; it decrypts each payload (aes128gcm)
    with the subscription's private key and auth secret, and checks the VAPID signature."""

    def __init__(self, vapid_public_key: str = ""):
        super().__init__()
        self.vapid_public_key = vapid_public_key
        self.subscriptions: dict[str, tuple[object, bytes]] = {}
        self.gone: set[str] = set()
        self.delivered: list[dict] = []  # {"subscription", "payload", "vapid_claims", "headers"}

    def subscribe(self) -> str:
        """A new subscription; returns the Push API subscription JSON a browser would give."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        sub_id = secrets.token_urlsafe(12)
        self.subscriptions[sub_id] = (key, auth)
        p256dh = key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
        return json.dumps({"endpoint": f"{self.url}/push/{sub_id}", "expirationTime": None,
                           "keys": {"p256dh": _b64url(p256dh), "auth": _b64url(auth)}})

    def _vapid(self, received: Received) -> dict | None:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import ec

        header = received.headers.get("Authorization", "")
        if not header.startswith("vapid "):
            return None
        parts = dict(p.strip().split("=", 1) for p in header[6:].split(","))
        if parts.get("k") != self.vapid_public_key:
            return None
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(parts["k"]))
        try:
            return jwt.decode(parts["t"], public, algorithms=["ES256"], audience=self.url)
        except jwt.PyJWTError:
            return None

    def handle(self, received: Received) -> Reply:
        import http_ece

        sub_id = received.path.rsplit("/", 1)[-1]
        if sub_id in self.gone:
            return Reply(410, "push subscription has unsubscribed or expired.")
        if sub_id not in self.subscriptions:
            return Reply(404, "no such subscription")
        claims = self._vapid(received)
        if claims is None:
            return Reply(403, "VAPID signature required")
        key, auth = self.subscriptions[sub_id]
        try:
            plain = http_ece.decrypt(received.body, private_key=key, auth_secret=auth, version="aes128gcm")
        except Exception as exc:  # noqa: BLE001
            return Reply(400, f"could not decrypt: {exc}")
        with self.lock:
            self.delivered.append({"subscription": sub_id, "payload": json.loads(plain), "vapid_claims": claims,
                                   "headers": received.headers})
        return Reply(201, "", headers={"Location": f"{self.url}/message/{secrets.token_hex(8)}"})



# --- TCP ---------------------------------------------------------------------------------

class CountingTcpProxy:
    """Forwards every TCP connection it accepts on 127.0.0.1 to ``target`` and counts them: how many
    connections a client opened to the real server behind it. ``cut()`` plays the server going away
    (every forwarded connection closed, each new one closed at once) and ``blackhole()`` a server that
    stopped answering (every forwarded connection closed, each new one held open and never answered),
    until ``restore()``."""

    def __init__(self, host: str, port: int):
        import socket

        self.target = (host, port)
        self.accepted = 0
        self.lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._cut = False
        self._blackhole = False
        self._open: set = set()  # the sockets of the connections it forwards (their pipe threads close them)
        self._held: set = set()  # the connections it holds unanswered (blackhole), closed when it stops holding
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _accept(self):
        import socket

        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                cut, blackhole = self._cut, self._blackhole
                if blackhole:
                    self._held.add(client)  # its bytes are received by the kernel, never answered
            if cut:
                client.close()
                continue
            if blackhole:
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(2)
                except OSError:
                    pass
                s.close()

    def cut(self):
        """Close every forwarded connection and each new one, as a server that went away."""
        self._close_open(cut=True)

    def blackhole(self):
        """Close every forwarded connection and hold each new one unanswered, as a server that stopped
        answering (a partition, a host gone): a client waits until its own timeout."""
        self._close_open(blackhole=True)

    def _close_open(self, *, cut: bool = False, blackhole: bool = False):
        import socket

        with self.lock:
            self._cut, self._blackhole = cut, blackhole
            forwarded, self._open = list(self._open), set()
            held, self._held = list(self._held), set()
        for s in forwarded + held:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for s in held:
            s.close()

    def restore(self):
        self._close_open()

    def stop(self):
        self._closed = True
        self._listener.close()
        self._close_open()
