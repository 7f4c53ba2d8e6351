"""`make bench`: the IdP beside node oidc-provider, both driven by wrk; writes docs/performance.md.

What it does, in order:

1. a fresh instance in a temporary directory (SQLite there; then, when
   IDP_BENCH_DATABASE_URL is set, that PostgreSQL database, which is wiped: its
   name must contain "bench"), prepared with the ``idp`` CLI: ``idp init``, a
   tenant, a user with a password and a confidential client;
2. ``idp serve --workers 1`` on 127.0.0.1 (one worker: the figures are per core)
   and the peer, node oidc-provider 9 (bench/node/peer.mjs: one process, in
   memory, ES256 JWT access tokens, one confidential client);
3. for each scenario wrk -t1 -c8 (Lua scripts for the POSTs) against ours, then
   against the peer when it has the endpoint: a warm-up, then a measured window;
   server CPU and the CPU other processes took come from /proc;
4. argon2id verifications per second on one core, in this process, just before and
   just after the password POST's window (the ceiling of that POST); the RSS of the
   worker after the run;
5. the flat-cost pair: a second instance beside the first, bulk-seeded to
   --scale-users users and --scale-tokens refresh tokens, its own server started; the
   token endpoint and the password POST on both, in windows that alternate small,
   large, large, small, so that a change of the host's speed during the pair weighs
   on both sizes alike;
6. the figures in bench/results/ (JSON) and docs/performance.md.

Every request goes to 127.0.0.1; the servers are stopped at the end, even on error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from loadgen import CSRF_RE, BenchError, Connection, basic_auth, code_flow
from report import write_report

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua"
NODE_DIR = BENCH / "node"
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "performance.md"
IDP = [sys.executable, "-c", "from idp.cli import main; main()"]

# name -> (label, method and path)
SCENARIOS = {
    "discovery": ("discovery", "GET /.well-known/openid-configuration"),
    "jwks": ("JWKS", "GET /.well-known/jwks.json"),
    "client_credentials": ("client_credentials grant, ES256 JWT", "POST /oauth/token"),
    "introspection": ("introspection of a JWT access token", "POST /oauth/introspect"),
    "userinfo": ("userinfo, Bearer JWT access token", "GET /oauth/userinfo"),
    "refresh": ("refresh grant (rotation, each token once)", "POST /oauth/token"),
    "login": ("password sign-in POST (argon2id)", "POST /login"),
}
PEER_PATHS = {"discovery": "/.well-known/openid-configuration", "jwks": "/jwks",
              "client_credentials": "/token", "introspection": "/token/introspection"}
# Which peer figure each of our scenarios is compared with, and the target ratio.
TARGETS = {"discovery": ("discovery", 1.0), "jwks": ("jwks", 1.0),
           "client_credentials": ("client_credentials", 1.0),
           "introspection": ("introspection", 0.8), "userinfo": ("introspection", 0.8),
           "refresh": ("client_credentials", 0.3)}
LOGIN_TARGET = 0.9
# The flat-cost pair: these scenarios on the instance of SMALL_USERS users and on one of
# --scale-users users and --scale-tokens stored refresh tokens; within FLAT_TOLERANCE of
# each other. FLAT_ORDER: the windows' order (an ABBA order cancels a steady drift of the
# host's speed); each window lasts half the main one, so each size gets one main window.
FLAT_SCENARIOS = ("client_credentials", "refresh", "login")
FLAT_ORDER = ("small", "large", "large", "small")
SMALL_USERS = 1_000
FLAT_TOLERANCE = 0.10
# Refresh tokens minted per second of window: above the fastest refresh rate seen here
# (3,700/s, SQLite, a fast host), since a window that runs out of tokens counts errors.
REFRESH_RATE_CAP = 5000
READY_TIMEOUT = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def _flat_cpus() -> tuple[set[int] | None, set[int] | None]:
    """The flat-cost pair's cores: one for both servers, one for wrk (of those this
    process may use); none when it has fewer than two."""
    usable = sorted(os.sched_getaffinity(0))
    return ({usable[0]}, {usable[1]}) if len(usable) >= 2 else (None, None)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The IdP beside node oidc-provider, with wrk.")
    parser.add_argument("--duration", type=float,
                        default=float(os.environ.get("IDP_BENCH_DURATION", 4)),
                        help="measured seconds per scenario and server (default %(default)s)")
    parser.add_argument("--warmup", type=float,
                        default=float(os.environ.get("IDP_BENCH_WARMUP", 1)),
                        help="warm-up seconds (default %(default)s)")
    parser.add_argument("--connections", type=int, default=8,
                        help="wrk connections, one thread (default %(default)s)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated subset of: " + ", ".join(SCENARIOS))
    parser.add_argument("--no-peer", action="store_true", help="skip node oidc-provider")
    parser.add_argument("--scale-users", type=int,
                        default=int(os.environ.get("IDP_BENCH_SCALE_USERS", 100_000)),
                        help="users for the flat-cost scenario (default %(default)s)")
    parser.add_argument("--scale-tokens", type=int,
                        default=int(os.environ.get("IDP_BENCH_SCALE_TOKENS", 1_000_000)),
                        help="stored refresh tokens for the flat-cost scenario; 0 skips it "
                             "(default %(default)s)")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the in-process profile of the token endpoint")
    parser.add_argument("--output", default=None,
                        help="report path (default: docs/performance.md, written only by a "
                             "complete run: every scenario, with the peer)")
    args = parser.parse_args()
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.wrk_cpus = None  # the cores wrk may run on (the flat-cost pair pins it)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


# --- processes and CPU accounting ------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory (``RssFile``: the part that is file pages, such as the
    SQLite database mapped by ``PRAGMA mmap_size``, shared with the OS page cache)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found.extend(kids)
        frontier.extend(kids)
    return found


def system_busy() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pinned(cpus: set[int] | None):
    """A preexec_fn that keeps a child (and what it starts) on ``cpus``, or None."""
    return None if not cpus else (lambda: os.sched_setaffinity(0, cpus))


class Process:
    """A server we started, in its own process group, stopped by its id."""

    def __init__(self, name: str, command: list[str], env: dict, cwd: Path, logfile: Path,
                 port: int, ready_path: str):
        self.name, self.command, self.env, self.cwd = name, command, env, cwd
        self.logfile, self.port, self.ready_path = logfile, port, ready_path
        self.proc: subprocess.Popen | None = None

    def start(self, cpus: set[int] | None = None) -> None:
        """Start it and wait until it answers; ``cpus``: the cores it and its children
        may run on (none: any)."""
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, preexec_fn=_pinned(cpus))
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode}; "
                                 f"its log:\n{self.log_tail()}")
            try:
                response = Connection(self.port, timeout=5).request("GET", self.ready_path)
                if response.status == 200:
                    return
                last = response.describe()
            except (BenchError, OSError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise BenchError(f"{self.name} not ready in {READY_TIMEOUT:.0f} s ({last}):\n"
                         f"{self.log_tail()}")

    def pids(self) -> list[int]:
        return [self.proc.pid, *descendants(self.proc.pid)] if self.proc else []

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def rss(self) -> dict[int, float]:
        return {pid: rss_mib(pid) for pid in self.pids()}

    def rss_file(self) -> dict[int, float]:
        return {pid: rss_mib(pid, "RssFile") for pid in self.pids()}

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group we created with start_new_session
            proc.wait(5)


# --- wrk -------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def wrk(port: int, path: str, seconds: float, connections: int, script: str | None = None,
        env: dict | None = None, cpus: set[int] | None = None) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    if script:
        command += ["-s", str(LUA / script)]
    command.append(f"http://127.0.0.1:{port}{path}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30,
                          env={**os.environ, **(env or {})}, check=False,
                          preexec_fn=_pinned(cpus))
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise BenchError(f"wrk failed ({done.returncode}): {out}\n{done.stderr}")
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    return {"requests": total, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "errors": (int(bad.group(1)) if bad else 0)
            + (sum(int(g) for g in sock.groups()) if sock else 0),
            "p50_ms": _ms(latency.get("50", "")), "p99_ms": _ms(latency.get("99", ""))}


def measure(server: Process, path: str, args, script: str | None = None,
            env: dict | None = None, warm_env: dict | None = None) -> dict:
    cpus = args.wrk_cpus
    if args.warmup > 0:
        wrk(server.port, path, args.warmup, args.connections, script, warm_env or env, cpus)
    cpu0, (busy0, total0), wall0 = server.cpu(), system_busy(), time.monotonic()
    result = wrk(server.port, path, args.duration, args.connections, script, env, cpus)
    wall = time.monotonic() - wall0
    busy1, total1 = system_busy()
    cpu = server.cpu() - cpu0
    machine = (busy1 - busy0) / max(1, total1 - total0) * CORES
    # wrk's own CPU is part of "machine"; about as much as the server's at these rates.
    result.update(server_cpu_cores=cpu / wall, machine_cores=machine, server_cpu_s=cpu,
                  wall_s=wall)
    return result


def combined(windows: list[dict]) -> dict:
    """Several windows of one scenario as one: requests over their wall time and over the
    server's CPU time, the worst p99, every error."""
    wall = sum(w["wall_s"] for w in windows)
    cpu = sum(w["server_cpu_s"] for w in windows)
    requests = sum(w["requests"] for w in windows)
    return {"requests": requests, "rps": requests / wall, "server_cpu_cores": cpu / wall,
            "server_cpu_s": cpu, "wall_s": wall,
            "errors": sum(w["errors"] for w in windows),
            "p99_ms": max(w["p99_ms"] for w in windows),
            "machine_cores": sum(w["machine_cores"] * w["wall_s"] for w in windows) / wall,
            "windows": windows}


# --- setup -----------------------------------------------------------------------------------


def reset_postgres(url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    name = urlsplit(url).path.lstrip("/")
    if name == "test" or "bench" not in name:
        raise BenchError(f"IDP_BENCH_DATABASE_URL names database {name!r}: it would be wiped, so "
                         "its name must contain 'bench'")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
            version = conn.execute(text("SHOW server_version")).scalar()
    except SQLAlchemyError as exc:
        raise BenchError(f"cannot prepare {_redact(url)}: {exc}") from exc
    finally:
        engine.dispose()
    return f"PostgreSQL {version}"


def instance_env(tmp: Path, name: str, url: str | None) -> dict:
    """The environment of one throwaway instance: its directory, keys, port and database."""
    instance = tmp / name
    instance.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({
        "IDP_INSTANCE_DIR": str(instance), "IDP_KEYS_DIR": str(instance / "keys"),
        "IDP_ISSUER": f"http://localhost:{port}", "IDP_HOST": "127.0.0.1",
        "IDP_PORT": str(port), "PYTHONPATH": str(ROOT),
        "IDP_DATABASE_URL": url or f"sqlite:///{instance / 'idp.sqlite3'}",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
        # All load comes from 127.0.0.1: lift the per-IP login limit (it still counts).
        "IDP_LOGIN_IP_LIMIT": "1000000000",
    })
    return env


def sibling_postgres(url: str, suffix: str, drop: bool = False) -> str:
    """A database beside the bench's own (same server, its name + suffix), created empty;
    with ``drop``, dropped instead. Its name contains "bench" as the bench's does."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    parsed = make_url(url)
    name = f"{parsed.database}_{suffix}"
    engine = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if not drop:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        raise BenchError(f"cannot {'drop' if drop else 'create'} database {name!r} beside "
                         f"{_redact(url)} for the flat-cost pair: {exc}") from exc
    finally:
        engine.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def run(env: dict, *args: str, timeout: float = 300) -> str:
    done = subprocess.run([*IDP, *args] if args and args[0] != "python" else
                          [sys.executable, *args[1:]], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(args[:3])}` failed ({done.returncode}):\n"
                         f"{done.stdout}\n{done.stderr}")
    return done.stdout


def prepare_instance(env: dict) -> dict:
    # "1": a digit for sure, which the policy asks (a random tail lacks one ~2% of the time)
    email, password = "loadtest@bench.example", "Pw-1" + secrets.token_urlsafe(18)
    redirect_uri = "http://127.0.0.1:9/bench/callback"  # never fetched: the code is read off
    run(env, "init")
    run(env, "tenant", "create", "bench", "--name", "Bench")
    run(env, "user", "create", "--tenant", "bench", "--email", email, "--password", password)
    out = run(env, "client", "create", "--name", "Bench client", "--redirect-uri", redirect_uri,
              "--tenant", "bench", "--grant-type", "authorization_code", "--grant-type",
              "refresh_token", "--grant-type", "client_credentials", "--json")
    registered = next(json.loads(line) for line in reversed(out.strip().splitlines())
                      if line.startswith("{"))
    return {"client_id": registered["client_id"], "client_secret": registered["client_secret"],
            "email": email, "password": password, "redirect_uri": redirect_uri}


def login_form(port: int) -> tuple[str, str]:
    """A session cookie and its CSRF token from GET /login, for a repeated POST."""
    response = Connection(port).request("GET", "/login")
    match = CSRF_RE.search(response.body.decode("utf-8", "replace"))
    if response.status != 200 or not match:
        raise BenchError(f"login page: no CSRF token in {response.describe()}")
    cookie = "; ".join(f"{k}={v}" for k, v in response.cookies().items() if v)
    return cookie, match.group(1)


def argon2_rate(seconds: float = 1.0) -> float:
    """argon2id verifications per second on one core, with the IdP's parameters."""
    from idp.factors.password_hash import HASHER as hasher

    stored = hasher.hash("Bench-password-1")
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        hasher.verify(stored, "Bench-password-1")
        done += 1
    return done / (time.perf_counter() - started)


def token_post(port: int, path: str, creds: dict, body: dict) -> dict:
    response = Connection(port).request("POST", path, {
        "Authorization": basic_auth(creds["client_id"], creds["client_secret"]),
        "Content-Type": "application/x-www-form-urlencoded"}, urlencode(body).encode())
    if response.status != 200:
        raise BenchError(f"token: {response.describe()}")
    return json.loads(response.body)


# --- one backend -----------------------------------------------------------------------------


def mint_refresh_tokens(env: dict, tmp: Path, refresh_token: str, args, tag: str,
                        windows: int = 1) -> list[dict]:
    """Refresh tokens for each window's warm-up and measured part, each used once; enough
    for them at up to REFRESH_RATE_CAP requests per second. One bench/seed_refresh.py run
    mints them all; each part gets a file of its own (refresh.lua starts at its first line)."""
    parts = [(f"{window}-{phase}", int(REFRESH_RATE_CAP * max(1.0, seconds)) + 200)
             for window in range(windows)
             for phase, seconds in (("warm", args.warmup), ("run", args.duration))]
    minted, started = tmp / f"refresh-{tag}.txt", time.monotonic()
    total = sum(count for _, count in parts)
    run(env, "python", str(BENCH / "seed_refresh.py"), refresh_token, str(total), str(minted))
    log(f"{tag}: minted {total:,} refresh tokens in {time.monotonic() - started:.1f} s")
    lines = minted.read_text().splitlines()
    files, start = {}, 0
    for name, count in parts:
        path = tmp / f"refresh-{tag}-{name}.txt"
        path.write_text("\n".join(lines[start:start + count]) + "\n")
        files[name], start = str(path), start + count
    return [{"warm": files[f"{w}-warm"], "run": files[f"{w}-run"]} for w in range(windows)]


class OurScenarios:
    """How each scenario drives our server (one instance, one running worker)."""

    def __init__(self, server: Process, args, creds: dict, flow: dict):
        self.server, self.args, self.creds, self.flow = server, args, creds, flow
        self.auth = basic_auth(creds["client_id"], creds["client_secret"])
        self.tokens: list[dict] = []  # refresh tokens: a warm-up and a run file per window
        self.login: tuple[str, str] | None = None

    def measure(self, name: str, ceiling: bool = True) -> dict:
        """One window of a scenario; for the password POST, with ``ceiling``, argon2id's
        rate measured just before and just after it (their mean)."""
        server, args, auth = self.server, self.args, self.auth
        if name in ("discovery", "jwks"):
            return measure(server, SCENARIOS[name][1].split()[1], args)
        if name == "client_credentials":
            return measure(server, "/oauth/token", args, "post.lua", {
                "BENCH_BODY": "grant_type=client_credentials", "BENCH_AUTH": auth})
        if name == "introspection":
            return measure(server, "/oauth/introspect", args, "post.lua", {
                "BENCH_BODY": urlencode({"token": self.flow["access_token"]}),
                "BENCH_AUTH": auth})
        if name == "userinfo":
            return measure(server, "/oauth/userinfo", args, "bearer.lua",
                           {"BENCH_AUTH": f"Bearer {self.flow['access_token']}"})
        if name == "refresh":
            tokens = self.tokens.pop(0)
            return measure(server, "/oauth/token", args, "refresh.lua",
                           {"BENCH_TOKENS": tokens["run"], "BENCH_AUTH": auth},
                           {"BENCH_TOKENS": tokens["warm"], "BENCH_AUTH": auth})
        if name == "login":
            return self._login(ceiling)
        raise BenchError(f"unknown scenario {name}")

    def _login(self, ceiling: bool) -> dict:
        port, creds = self.server.port, self.creds
        if self.login is None:
            self.login = login_form(port)
        cookie, csrf = self.login
        body = urlencode({"email": creds["email"], "password": creds["password"],
                          "csrf_token": csrf})
        for _ in range(2):  # the same form twice: both must sign in (303 onwards)
            answer = Connection(port).request("POST", "/login", {
                "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
                body.encode())
            if answer.status != 303 or (answer.header("location") or "").startswith("/login"):
                raise BenchError(f"login POST: {answer.describe()} {answer.header('location')!r}")
        before = argon2_rate() if ceiling else None
        ours = measure(self.server, "/login", self.args, "post.lua",
                       {"BENCH_BODY": body, "BENCH_COOKIE": cookie})
        if ceiling:
            ours["argon2_per_s"] = (before + argon2_rate()) / 2
        return ours


def start_ours(name: str, env: dict, tmp: Path, cpus: set[int] | None = None) -> Process:
    """``idp serve --workers 1`` on the instance of ``env``, ready."""
    port = int(env["IDP_PORT"])
    server = Process("idp serve", [*IDP, "serve", "--workers", "1", "--host", "127.0.0.1",
                                   "--port", str(port)], env, ROOT, tmp / f"idp-{name}.log",
                     port, "/readyz")
    log(f"{name}: starting `idp serve --workers 1` on 127.0.0.1:{port}"
        + (f" (cores {sorted(cpus)})" if cpus else ""))
    server.start(cpus)
    return server


def record_memory(results: dict, name: str, server: Process) -> None:
    """The RSS of a server's processes now (and which of them are its workers)."""
    results["rss_mib"][name] = server.rss()
    results.setdefault("rss_file_mib", {})[name] = server.rss_file()
    results.setdefault("workers", {})[name] = descendants(server.proc.pid)


def log_errors(name: str, server: Process) -> None:
    errors = [line for line in server.log_tail(400).splitlines()
              if "Traceback" in line or " 500 " in line]
    if errors:
        log(f"{name}: the server log has {len(errors)} error line(s):\n{server.log_tail(40)}")


def run_ours(backend: str, env: dict, args, tmp: Path, peer: Process | None,
             peer_creds: dict, results: dict, large_url: str | None) -> tuple[dict, dict]:
    creds = prepare_instance(env)
    if args.scale_tokens:  # the small size of the flat-cost pair: 1k users
        run(env, "python", str(BENCH / "seed_bulk.py"), creds["client_id"],
            str(SMALL_USERS), "0")
    server = start_ours(backend, env, tmp)
    rows, flat = {}, {}
    try:
        flow = code_flow(server.port, creds)
        ours_of = OurScenarios(server, args, creds, flow)
        if "refresh" in args.scenarios:
            ours_of.tokens = mint_refresh_tokens(env, tmp, flow["refresh_token"], args, backend)
        for name in args.scenarios:
            row = {"scenario": name, "ours": ours_of.measure(name)}
            if peer is not None and backend == "sqlite" and name in PEER_PATHS:
                row["peer"] = measure_peer(name, peer, peer_creds, args)
                results.setdefault("peer", {})[name] = row["peer"]
            rows[name] = row
            log(describe(backend, row))
        record_memory(results, backend, server)
        if args.scale_tokens:
            flat = measure_flat(backend, env, tmp, args, ours_of, large_url, results)
        if args.profile:
            creds_file = tmp / f"creds-{backend}.json"
            creds_file.write_text(json.dumps(creds))
            out = tmp / f"profile-{backend}.json"
            log(f"{backend}: profiling the token endpoint in-process (cProfile)")
            run(env, "python", str(BENCH / "profile_token.py"), "--creds", str(creds_file),
                "--seconds", "2", "--requests", "400", "--json", str(out))
            results.setdefault("profile", {})[backend] = json.loads(out.read_text())
        log_errors(backend, server)
    finally:
        server.stop()
    return rows, flat


def measure_flat(backend: str, env: dict, tmp: Path, args, small: OurScenarios,
                 large_url: str | None, results: dict) -> dict:
    """The flat-cost pair: the small instance (``small``'s, its server restarted) beside a
    second one, bulk-seeded, with its own server; FLAT_ORDER's windows on each, per
    scenario."""
    name = f"{backend}-large"
    large_env = instance_env(tmp, name, large_url)
    large_creds = prepare_instance(large_env)
    log(f"{name}: seeding {args.scale_users:,} users and {args.scale_tokens:,} refresh "
        "tokens (bulk)")
    started = time.monotonic()
    out = run(large_env, "python", str(BENCH / "seed_bulk.py"), large_creds["client_id"],
              str(args.scale_users), str(args.scale_tokens), timeout=600)
    seeded = time.monotonic() - started
    log(f"{name}: {out.strip()}")
    # Both servers on one core and wrk on the other: two processes otherwise land on the
    # cores differently, which moved one's CPU per request by up to 15% against the other's.
    server_cpus, wrk_cpus = _flat_cpus()
    half = argparse.Namespace(**{**vars(args), "duration": max(1.0, args.duration / 2),
                                 "wrk_cpus": wrk_cpus})
    flat = {"seed_s": seeded, "small_users": SMALL_USERS, "large_users": args.scale_users,
            "large_tokens": args.scale_tokens, "order": list(FLAT_ORDER),
            "window_s": half.duration, "pinned": server_cpus is not None, "rows": {}}
    server = start_ours(name, large_env, tmp, server_cpus)
    try:
        small.server.stop()  # both servers fresh: the pair compares sizes, not two histories
        small.server.start(server_cpus)
        large = OurScenarios(server, half, large_creds, code_flow(server.port, large_creds))
        sizes = {"small": OurScenarios(small.server, half, small.creds, small.flow),
                 "large": large}
        for scenario in FLAT_SCENARIOS:
            if scenario not in args.scenarios:
                continue
            if scenario == "refresh":
                for size, ours in sizes.items():
                    ours.tokens = mint_refresh_tokens(
                        large_env if size == "large" else env, tmp, ours.flow["refresh_token"],
                        half, f"{backend}-flat-{size}", FLAT_ORDER.count(size))
            windows: dict[str, list[dict]] = {"small": [], "large": []}
            for size in FLAT_ORDER:
                windows[size].append(sizes[size].measure(scenario, ceiling=False))
            pair = {size: combined(found) for size, found in windows.items()}
            flat["rows"][scenario] = pair
            log(f"{backend:10} {scenario:18} small {pair['small']['rps']:8.0f}/s large "
                f"{pair['large']['rps']:8.0f}/s cpu {pair['large']['server_cpu_cores']:.2f} "
                f"errors {pair['small']['errors'] + pair['large']['errors']}")
        record_memory(results, name, server)
        log_errors(name, server)
    finally:
        server.stop()
    return flat


def measure_peer(name: str, peer: Process, creds: dict, args) -> dict:
    path = PEER_PATHS[name]
    auth = basic_auth(creds["client_id"], creds["client_secret"])
    if name in ("discovery", "jwks"):
        return measure(peer, path, args)
    if name == "client_credentials":
        return measure(peer, path, args, "post.lua",
                       {"BENCH_BODY": "grant_type=client_credentials&scope=api",
                        "BENCH_AUTH": auth})
    token = token_post(peer.port, "/token", creds, {"grant_type": "client_credentials",
                                                   "scope": "api",
                                                   "resource": "urn:bench:opaque"})["access_token"]
    return measure(peer, path, args, "post.lua",
                   {"BENCH_BODY": urlencode({"token": token}), "BENCH_AUTH": auth})


def describe(backend: str, row: dict) -> str:
    ours = row["ours"]
    text = (f"{backend:10} {row['scenario']:18} ours {ours['rps']:8.0f}/s p99 "
            f"{ours['p99_ms']:6.2f} ms cpu {ours['server_cpu_cores']:.2f}"
            f" errors {ours['errors']}")
    if "peer" in row:
        text += f" | peer {row['peer']['rps']:8.0f}/s errors {row['peer']['errors']}"
    if "argon2_per_s" in ours:
        text += f" | argon2id {ours['argon2_per_s']:.1f}/s"
    return text


def versions() -> dict:
    found = {}
    for package in ("Flask", "Authlib", "joserfc", "SQLAlchemy", "granian", "gunicorn",
                    "psycopg", "argon2-cffi", "cryptography"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "-"
    try:
        found["oidc-provider"] = json.loads(
            (NODE_DIR / "node_modules" / "oidc-provider" / "package.json").read_text())["version"]
        found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                       check=False).stdout.strip()
        found["wrk"] = (subprocess.run(["wrk", "-v"], capture_output=True, text=True,
                                       check=False).stdout.split("\n")[0].split(" [")[0])
    except (OSError, ValueError):
        pass
    return found


def machine_info() -> dict:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpu_model": model, "cores": CORES, "python": platform.python_version(),
            "kernel": platform.release(), "packages": versions(),
            "sqlite": sqlite3.sqlite_version, "load_before": os.getloadavg()[0]}


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    results: dict = {"rss_mib": {}, "backends": {}}
    peer: Process | None = None
    peer_creds = {"client_id": "bench-peer", "client_secret": secrets.token_urlsafe(24)}
    pg_url = os.environ.get("IDP_BENCH_DATABASE_URL") or None
    try:
        if not args.no_peer:
            if not (NODE_DIR / "node_modules" / "oidc-provider").exists():
                raise BenchError("bench/node/node_modules is missing: run `make bench-node`")
            port = free_port()
            peer = Process("oidc-provider", ["node", "peer.mjs", str(port),
                                             peer_creds["client_id"],
                                             peer_creds["client_secret"]],
                           dict(os.environ), NODE_DIR, tmp / "peer.log", port,
                           "/.well-known/openid-configuration")
            peer.start()
            log(f"peer node oidc-provider on 127.0.0.1:{port}")
        backends = [("sqlite", None)] + ([("postgresql", pg_url)] if pg_url else [])
        for backend, url in backends:
            env = instance_env(tmp, backend, url)
            database = reset_postgres(url) if url else f"SQLite {sqlite3.sqlite_version} (WAL)"
            large_url = sibling_postgres(url, "large") if url and args.scale_tokens else None
            try:
                rows, flat = run_ours(backend, env, args, tmp, peer, peer_creds, results,
                                      large_url)
            finally:
                if large_url:
                    sibling_postgres(url, "large", drop=True)
            results["backends"][backend] = {"database": database, "rows": rows, "flat": flat}
        if peer is not None:
            results["rss_mib"]["peer"] = peer.rss()
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        if peer is not None:
            peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    record = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "command": "make bench" + (" (IDP_BENCH_DATABASE_URL set)" if pg_url else ""),
              "args": {"duration": args.duration, "warmup": args.warmup,
                       "connections": args.connections},
              "machine": machine_info(), "runtime_s": time.monotonic() - started,
              "scenarios": SCENARIOS, "targets": TARGETS, "login_target": LOGIN_TARGET,
              "flat_tolerance": FLAT_TOLERANCE,
              **results}
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(record, indent=2))
    complete = args.scenarios == list(SCENARIOS) and peer is not None
    output = args.output or (str(DOC) if complete else None)
    if output:
        write_report(Path(output), record, BENCH / "limits.md")
        log(f"wrote {output}")
    log(f"results in {RESULTS / f'{stamp}.json'} (total {time.monotonic() - started:.0f} s)")
    failed = [(b, r["scenario"]) for b, data in results["backends"].items()
              for r in data["rows"].values() if r["ours"]["errors"]
              or (r.get("peer") or {}).get("errors")]
    failed += [(b, f"{name} (flat-cost pair)") for b, data in results["backends"].items()
               for name, pair in ((data.get("flat") or {}).get("rows") or {}).items()
               if pair["small"]["errors"] or pair["large"]["errors"]]
    for backend, name in failed:
        log(f"ERRORS in {backend} {name}")
    return 1 if failed else 0


def _redact(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url


if __name__ == "__main__":
    sys.exit(main())
