"""Profile the machine endpoints in-process (no HTTP server, no network), with cProfile:
client_credentials, introspection and userinfo of a user's JWT access token, refresh.

Calls the WSGI app directly the way gunicorn does (an environ dict and
``start_response``), so the figures are the application's own cost: Flask,
Authlib, SQLAlchemy, joserfc and our code. Used by ``bench/run.py`` after the
load runs; also usable alone against an instance prepared by it:

    IDP_INSTANCE_DIR=... IDP_KEYS_DIR=... IDP_ISSUER=... IDP_DATABASE_URL=... \\
        .venv/bin/python bench/profile_token.py --creds .../bench_creds.json

cProfile slows pure-Python code more than C code, so shares are indicative;
the unprofiled requests/s are measured separately, without the profiler.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import pstats
import sys
import sysconfig
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STDLIB = sysconfig.get_paths()["stdlib"]
SECONDS_PER_SCENARIO = 2.5
MAX_REQUESTS = 20_000


class InProcessClient:
    """Calls the WSGI app with hand-built environs; keeps the idp_session cookie."""

    def __init__(self, app, issuer: str):
        self.app = app
        host = urlsplit(issuer).netloc
        self.base = {
            "SERVER_NAME": host.split(":")[0], "SERVER_PORT": host.split(":")[-1],
            "HTTP_HOST": host, "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "SCRIPT_NAME": "", "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        self.cookie: str | None = None

    def call(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        environ = dict(self.base)
        path, _, query = path.partition("?")
        environ.update({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        if body:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        if self.cookie:
            environ["HTTP_COOKIE"] = f"idp_session={self.cookie}"
        captured = {}

        def start_response(status, response_headers, exc_info=None):
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = response_headers

        chunks = self.app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        for name, value in captured["headers"]:
            if name.lower() == "set-cookie" and value.startswith("idp_session="):
                self.cookie = value.split(";", 1)[0].split("=", 1)[1] or None
        location = next((v for k, v in captured["headers"] if k.lower() == "location"), "")
        return captured["status"], location, data


def _code_flow(client: InProcessClient, creds: dict) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from loadgen import CSRF_RE, pkce_pair

    verifier, challenge = pkce_pair()
    query = urlencode({"response_type": "code", "client_id": creds["client_id"],
                       "redirect_uri": creds["redirect_uri"], "scope": "openid profile email",
                       "state": "s", "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    status, location, _ = client.call("GET", f"/oauth/authorize?{query}")
    if not location.startswith("/login"):
        raise SystemExit(f"profile: /oauth/authorize answered {status} {location!r}")
    status, _, page = client.call("GET", location)
    csrf = CSRF_RE.search(page.decode()).group(1)
    form = urlencode({"email": creds["email"], "password": creds["password"],
                      "csrf_token": csrf}).encode()
    status, location, _ = client.call("POST", location, form)
    for _ in range(5):
        if location.startswith(creds["redirect_uri"]):
            break
        status, location, _ = client.call("GET", location)
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = urlencode({"grant_type": "authorization_code", "code": code,
                      "redirect_uri": creds["redirect_uri"], "code_verifier": verifier}).encode()
    status, _, body = client.call("POST", "/oauth/token", form, {"Authorization": _basic(creds)})
    if status != 200:
        raise SystemExit(f"profile: code exchange answered {status} {body[:300]!r}")
    return json.loads(body)


def _basic(creds: dict) -> str:
    raw = f"{creds['client_id']}:{creds['client_secret']}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class Scenarios:
    def __init__(self, client: InProcessClient, creds: dict):
        self.client = client
        self.creds = creds
        self.auth = {"Authorization": _basic(creds)}
        issued = _code_flow(client, creds)
        self.refresh_token = issued["refresh_token"]
        self.access_token = issued["access_token"]
        client.cookie = None  # machines calling the token endpoint carry no browser cookie

    def client_credentials(self) -> None:
        status, _, body = self.client.call("POST", "/oauth/token",
                                           b"grant_type=client_credentials", self.auth)
        if status != 200:
            raise SystemExit(f"profile: client_credentials answered {status} {body[:300]!r}")

    def introspection(self) -> None:
        """A resource server introspecting a user's JWT access token (client_secret_basic)."""
        form = urlencode({"token": self.access_token}).encode()
        status, _, body = self.client.call("POST", "/oauth/introspect", form, self.auth)
        if status != 200 or not json.loads(body).get("active"):
            raise SystemExit(f"profile: introspection answered {status} {body[:300]!r}")

    def userinfo(self) -> None:
        status, _, body = self.client.call("GET", "/oauth/userinfo", headers={
            "Authorization": f"Bearer {self.access_token}"})
        if status != 200:
            raise SystemExit(f"profile: userinfo answered {status} {body[:300]!r}")

    def refresh(self) -> None:
        form = urlencode({"grant_type": "refresh_token",
                          "refresh_token": self.refresh_token}).encode()
        status, _, body = self.client.call("POST", "/oauth/token", form, self.auth)
        if status != 200:
            raise SystemExit(f"profile: refresh answered {status} {body[:300]!r}")
        self.refresh_token = json.loads(body)["refresh_token"]


def _rate(fn, seconds: float) -> dict:
    """Requests/s by the wall clock and CPU seconds per request (robust to a busy machine)."""
    count, started, cpu_started = 0, time.perf_counter(), time.process_time()
    deadline = started + seconds
    while count < MAX_REQUESTS and time.perf_counter() < deadline:
        fn()
        count += 1
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {"inprocess_requests": count, "inprocess_rps": count / wall,
            "cpu_us_per_request": cpu / count * 1e6, "rps_per_cpu_second": count / cpu}


def _group(filename: str, funcname: str) -> str:
    """Which library a profiled function belongs to."""
    if filename == "~":  # a C function: name it by its owner
        name = funcname.strip("<>")
        for marker, group in (("sqlite3", "sqlite3 (C)"), ("psycopg", "psycopg (C)"),
                              ("_hashlib", "hashlib (C)"), ("sha256", "hashlib (C)"),
                              ("sign", "cryptography (C)"), ("cryptography", "cryptography (C)"),
                              ("_rust", "cryptography (C)"), ("ec.", "cryptography (C)")):
            if marker in name:
                return group
        return "builtins (C)"
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.startswith(str(ROOT / "idp")):
        return "idp"
    if path.startswith(STDLIB):
        rest = path[len(STDLIB):].lstrip("/")
        return "stdlib " + rest.split("/", 1)[0].removesuffix(".py")
    return Path(path).name


def _short(key) -> str:
    filename, line, func = key
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(ROOT)):
        path = path[len(str(ROOT)) + 1:]
    elif path.startswith(STDLIB):
        path = path[len(STDLIB) + 1:]
    return f"{func} ({path}:{line})" if filename != "~" else func


def profile(fn, requests: int) -> dict:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        fn()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(entry[2] for entry in stats.stats.values())  # tottime summed = profiled time
    groups: dict[str, float] = {}
    for (filename, _line, func), entry in stats.stats.items():
        group = _group(filename, func)
        groups[group] = groups.get(group, 0.0) + entry[2]
    top_groups = sorted(groups.items(), key=lambda kv: -kv[1])[:12]
    by_self = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:20]
    by_cum = sorted(((k, v) for k, v in stats.stats.items()
                     if k[0] != "~" and (k[0].startswith(str(ROOT / "idp"))
                                         or "authlib" in k[0] or "/flask/" in k[0]
                                         or "sqlalchemy/orm/session" in k[0]
                                         or "sqlalchemy/engine/base" in k[0])),
                    key=lambda kv: -kv[1][3])[:25]
    return {
        "requests": requests,
        "profiled_us_per_request": total / requests * 1e6,
        "groups": [(name, seconds / total) for name, seconds in top_groups],
        "top_self": [(_short(k), v[2] / total, v[1] / requests) for k, v in by_self],
        "top_cumulative": [(_short(k), v[3] / total, v[1] / requests) for k, v in by_cum],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creds", required=True, help="JSON written by bench/run.py")
    parser.add_argument("--seconds", type=float, default=SECONDS_PER_SCENARIO,
                        help="unprofiled run per scenario (requests/s)")
    parser.add_argument("--requests", type=int, default=500, help="profiled requests")
    parser.add_argument("--json", dest="json_out", help="write the results here")
    args = parser.parse_args()
    creds = json.loads(Path(args.creds).read_text())

    import logging
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from idp import create_app

    app = create_app()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    client = InProcessClient(app, app.config["IDP_ISSUER"])
    scenarios = Scenarios(client, creds)
    results = {"database": app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0],
               "scenarios": {}}
    for name in ("client_credentials", "introspection", "userinfo", "refresh"):
        fn = getattr(scenarios, name)
        for _ in range(300):  # warm caches: keys, compiled SQL, Jinja, Authlib
            fn()
        result = _rate(fn, args.seconds)
        result.update(profile(fn, args.requests))
        results["scenarios"][name] = result
        print(f"{name}: {result['cpu_us_per_request']:,.0f} us of CPU per request in-process "
              f"(no HTTP), i.e. {result['rps_per_cpu_second']:,.0f} requests per CPU-second; "
              f"{result['profiled_us_per_request']:,.0f} us/request under cProfile", flush=True)
        for group, share in result["groups"][:8]:
            print(f"    {share:6.1%}  {group}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
