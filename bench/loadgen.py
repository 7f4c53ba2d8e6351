"""Load generation: a lean HTTP/1.1 client and the scenario loops, each run in its own process.

The client is a raw socket with pre-built requests, so that the load processes
spend as little CPU as possible (they share the machine with the server). It
keeps a connection alive when the server allows it and reconnects when the
server answers ``Connection: close`` (gunicorn's sync workers always do).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import time
from array import array
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
TITLE_RE = re.compile(r"<title>([^<]*)</title>", re.IGNORECASE)
COOKIE_NAME = "idp_session"
MAX_ERROR_SAMPLES = 5


class BenchError(Exception):
    """A setup step or a request did not answer what the benchmark expects."""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def cookies(self) -> dict[str, str]:
        found = {}
        for key, value in self.headers:
            if key == "set-cookie":
                pair = value.split(";", 1)[0]
                name, _, val = pair.partition("=")
                found[name.strip()] = val.strip()
        return found

    def describe(self) -> str:
        text = self.body[:2000].decode("utf-8", "replace")
        title = TITLE_RE.search(text)
        if title:  # an HTML page: its title says enough
            return f"HTTP {self.status}: page {title.group(1).strip()!r}"
        return f"HTTP {self.status}: {text[:300]}"


class Connection:
    """One HTTP/1.1 connection to 127.0.0.1, reopened when the server closes it."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0,
                 half_close: bool = False):
        self.host = host
        # Send FIN right after the request: a server that closes every connection (gunicorn
        # sync) then need not wait for the client's FIN after its answer. A diagnostic only.
        self.half_close = half_close
        self.port = port
        self.timeout = timeout
        self.host_header = f"localhost:{port}"
        self.sock: socket.socket | None = None
        self.buf = b""
        self.connects = 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buf = b""

    def build(self, method: str, path: str, headers: dict | None = None,
              body: bytes = b"") -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def request(self, method: str, path: str, headers: dict | None = None,
                body: bytes = b"") -> Response:
        return self.send(self.build(method, path, headers, body))

    def send(self, raw: bytes) -> Response:
        reused = self.sock is not None
        try:
            if self.sock is None:
                self._connect()
            self.sock.sendall(raw)
            if self.half_close:
                self.sock.shutdown(socket.SHUT_WR)
            return self._read_response()
        except (ConnectionError, BrokenPipeError) as exc:
            self.close()
            if not reused:
                raise BenchError(f"connection failed: {exc!r}") from exc
        # A kept-alive connection the server had closed: one retry on a fresh one.
        self._connect()
        self.sock.sendall(raw)
        return self._read_response()

    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buf = b""
        self.connects += 1

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        return chunk

    def _read_response(self) -> Response:
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            buf += self._recv()
        head = buf[:end].decode("latin-1").split("\r\n")
        rest = buf[end + 4:]
        version, status, *_ = head[0].split(" ", 2)
        headers, length, close, chunked = [], None, version == "HTTP/1.0", False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers.append((name, value))
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value.lower() == "close"
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
        if chunked:
            body, rest = self._read_chunked(rest)
        elif length is None:
            body = rest
            while True:
                try:
                    body += self._recv()
                except ConnectionError:
                    break
            rest, close = b"", True
        else:
            while len(rest) < length:
                rest += self._recv()
            body, rest = rest[:length], rest[length:]
        if close:
            self.close()
        else:
            self.buf = rest
        return Response(int(status), headers, body)

    def _read_chunked(self, data: bytes) -> tuple[bytes, bytes]:
        body = b""
        while True:
            while b"\r\n" not in data:
                data += self._recv()
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                data += self._recv()
            if size == 0:
                # Trailers are not used by the server; skip the final CRLF.
                return body, data[2:]
            body, data = body + data[:size], data[size + 2:]


def basic_auth(client_id: str, client_secret: str) -> str:
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


FORM = "application/x-www-form-urlencoded"


# --- the real code flow (setup of the refresh, userinfo and introspection scenarios) --------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def code_flow(port: int, creds: dict) -> dict:
    """Authorize with PKCE, sign in through the login form, exchange the code: the token JSON."""
    conn = Connection(port)
    cookies: dict[str, str] = {}

    def call(method, path, body=b"", step=""):
        headers = {}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if method == "POST":
            headers["Content-Type"] = FORM
        response = conn.request(method, path, headers, body)
        for name, value in response.cookies().items():
            if value:
                cookies[name] = value
            else:
                cookies.pop(name, None)
        if response.status >= 500:
            raise BenchError(f"code flow, {step}: {method} {path} -> {response.describe()}")
        return response

    redirect_uri = creds["redirect_uri"]
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    query = urlencode({"response_type": "code", "client_id": creds["client_id"],
                       "redirect_uri": redirect_uri, "scope": "openid profile email",
                       "state": state, "nonce": nonce, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    response = call("GET", f"/oauth/authorize?{query}", step="authorize")
    location = response.header("location") or ""
    if response.status not in (302, 303) or not location.startswith("/login"):
        raise BenchError(f"code flow, authorize: expected a redirect to /login, got "
                         f"{response.describe()} (Location: {location!r})")
    login_path = location
    page = call("GET", login_path, step="login page")
    match = CSRF_RE.search(page.body.decode("utf-8", "replace"))
    if page.status != 200 or not match:
        raise BenchError(f"code flow, login page: no CSRF token in {page.describe()}")
    form = urlencode({"email": creds["email"], "password": creds["password"],
                      "csrf_token": match.group(1)}).encode()
    response = call("POST", login_path, form, step="login POST")
    for _ in range(5):  # bounded: resume, then maybe select-tenant/consent (not expected)
        location = response.header("location") or ""
        if response.status in (302, 303) and location.startswith(redirect_uri):
            break
        if response.status not in (302, 303) or not location.startswith("/"):
            raise BenchError(f"code flow, after login: expected a redirect, got "
                             f"{response.describe()} (Location: {location!r})")
        response = call("GET", location, step=f"follow {location.split('?')[0]}")
    else:
        raise BenchError("code flow: never reached the redirect URI")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if "code" not in params or params.get("state") != state:
        raise BenchError(f"code flow, callback: unexpected parameters {params}")
    form = urlencode({"grant_type": "authorization_code", "code": params["code"],
                      "redirect_uri": redirect_uri, "code_verifier": verifier}).encode()
    response = conn.request("POST", "/oauth/token", {
        "Authorization": basic_auth(creds["client_id"], creds["client_secret"]),
        "Content-Type": FORM}, form)
    if response.status != 200:
        raise BenchError(f"code flow, code exchange: {response.describe()}")
    tokens = json.loads(response.body)
    if not tokens.get("refresh_token"):
        raise BenchError(f"code flow, code exchange: no refresh_token in {sorted(tokens)}")
    conn.close()
    return tokens


# --- scenarios -------------------------------------------------------------------------------


@dataclass
class Result:
    latencies: array = field(default_factory=lambda: array("d"))
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    fatal: str | None = None
    requests: int = 0
    warmup_errors: int = 0

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.samples) < MAX_ERROR_SAMPLES and message not in self.samples:
            self.samples.append(message)


class Scenario:
    """One measured request per ``step``; returns (start, stop, error or None)."""

    fatal_on_error = False

    def __init__(self, conn: Connection, ctx: dict, slot: int):
        self.conn = conn
        self.ctx = ctx
        self.slot = slot

    def step(self) -> tuple[float, float, str | None]:
        raise NotImplementedError


class FixedRequest(Scenario):
    """The same bytes every time (GET discovery/JWKS/userinfo, POST client_credentials...)."""

    expected = 200

    def __init__(self, conn, ctx, slot):
        super().__init__(conn, ctx, slot)
        self.raw = self.build()

    def build(self) -> bytes:
        raise NotImplementedError

    def check(self, response: Response) -> str | None:
        return None if response.status == self.expected else response.describe()

    def step(self):
        start = time.monotonic()
        response = self.conn.send(self.raw)
        stop = time.monotonic()
        return start, stop, self.check(response)


class Discovery(FixedRequest):
    def build(self):
        return self.conn.build("GET", "/.well-known/openid-configuration")


class Jwks(FixedRequest):
    def build(self):
        return self.conn.build("GET", "/.well-known/jwks.json")


class ClientCredentials(FixedRequest):
    def build(self):
        creds = self.ctx["creds"]
        return self.conn.build("POST", "/oauth/token", {
            "Authorization": basic_auth(creds["client_id"], creds["client_secret"]),
            "Content-Type": FORM}, b"grant_type=client_credentials")

    def check(self, response):
        if response.status != 200 or b'"access_token"' not in response.body:
            return response.describe()
        return None


class Userinfo(FixedRequest):
    def build(self):
        return self.conn.build("GET", "/oauth/userinfo", {
            "Authorization": f"Bearer {self.ctx['access_token']}"})

    def check(self, response):
        if response.status != 200 or b'"sub"' not in response.body:
            return response.describe()
        return None


class Introspection(FixedRequest):
    def build(self):
        creds = self.ctx["creds"]
        body = urlencode({"token": self.ctx["access_token"],
                          "token_type_hint": "access_token"}).encode()
        return self.conn.build("POST", "/oauth/introspect", {
            "Authorization": basic_auth(creds["client_id"], creds["client_secret"]),
            "Content-Type": FORM}, body)

    def check(self, response):
        if response.status != 200 or b'"active":true' not in response.body.replace(b" ", b""):
            return response.describe()
        return None


class Refresh(Scenario):
    """Each load process chains its own refresh token: every answer carries the next one."""

    fatal_on_error = True

    def __init__(self, conn, ctx, slot):
        super().__init__(conn, ctx, slot)
        creds = ctx["creds"]
        self.auth = basic_auth(creds["client_id"], creds["client_secret"])
        self.token = ctx["refresh_tokens"][slot]

    def step(self):
        body = urlencode({"grant_type": "refresh_token", "refresh_token": self.token}).encode()
        raw = self.conn.build("POST", "/oauth/token", {
            "Authorization": self.auth, "Content-Type": FORM}, body)
        start = time.monotonic()
        response = self.conn.send(raw)
        stop = time.monotonic()
        if response.status != 200:
            return start, stop, response.describe()
        token = json.loads(response.body).get("refresh_token")
        if not token:
            return start, stop, "refresh answer without a new refresh_token"
        self.token = token
        return start, stop, None


class Login(Scenario):
    """GET /login for a CSRF token (not timed), then the timed POST with the password.

    A successful login rotates the session and drops its CSRF token, so every
    login needs a fresh form: that is what a browser does too.
    """

    def __init__(self, conn, ctx, slot):
        super().__init__(conn, ctx, slot)
        self.cookie: str | None = None
        self.email = ctx["creds"]["email"]
        self.password = ctx["creds"]["password"]

    def _headers(self, extra=None):
        headers = {"Cookie": f"{COOKIE_NAME}={self.cookie}"} if self.cookie else {}
        headers.update(extra or {})
        return headers

    def _remember(self, response: Response) -> None:
        value = response.cookies().get(COOKIE_NAME)
        if value is not None:
            self.cookie = value or None

    def step(self):
        page = self.conn.request("GET", "/login", self._headers())
        self._remember(page)
        match = CSRF_RE.search(page.body.decode("utf-8", "replace"))
        if page.status != 200 or match is None:
            now = time.monotonic()
            return now, now, f"login page: {page.describe()}"
        body = urlencode({"email": self.email, "password": self.password,
                          "csrf_token": match.group(1)}).encode()
        raw = self.conn.build("POST", "/login", self._headers({"Content-Type": FORM}), body)
        start = time.monotonic()
        response = self.conn.send(raw)
        stop = time.monotonic()
        self._remember(response)
        if response.status != 303:
            return start, stop, response.describe()
        return start, stop, None


SCENARIOS = {
    "client_credentials": ClientCredentials,
    "refresh": Refresh,
    "discovery": Discovery,
    "jwks": Jwks,
    "userinfo": Userinfo,
    "introspection": Introspection,
    "login": Login,
}

MAX_ITERATIONS = 5_000_000  # a backstop; the loop is bounded by time first


def client_process(name: str, slot: int, port: int, ctx: dict, t0: float, warmup: float,
                   duration: float, queue) -> None:
    """Run one load process: start at t0, warm up, measure, report through the queue."""
    result = Result()
    window_start, window_end = t0 + warmup, t0 + warmup + duration
    conn = Connection(port, half_close=ctx.get("half_close", False))
    try:
        scenario = SCENARIOS[name](conn, ctx, slot)
        delay = t0 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for _ in range(MAX_ITERATIONS):
            if time.monotonic() >= window_end:
                break
            try:
                start, stop, error = scenario.step()
            except (BenchError, OSError, ValueError) as exc:
                conn.close()
                start = stop = time.monotonic()
                error = f"{type(exc).__name__}: {exc}"
            result.requests += 1
            if window_start <= stop <= window_end:
                if error is None:
                    result.latencies.append(stop - start)
                else:
                    result.error(error)
            elif error is not None and stop < window_start:
                result.warmup_errors += 1
                if len(result.samples) < MAX_ERROR_SAMPLES:
                    result.samples.append(f"(warm-up) {error}")
            if error is not None and scenario.fatal_on_error:
                result.fatal = error
                break
        conn.close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, never swallowed
        result.fatal = f"{type(exc).__name__}: {exc}"
    queue.put({"slot": slot, "latencies": result.latencies.tobytes(), "errors": result.errors,
               "warmup_errors": result.warmup_errors, "samples": result.samples,
               "fatal": result.fatal, "requests": result.requests, "connects": conn.connects})
