"""`make bench`: throughput and latency of the IdP under gunicorn; writes docs/performance.md.

What it does, in order:

1. a fresh instance in a temporary directory (SQLite there, or the PostgreSQL
   database named by IDP_BENCH_DATABASE_URL, which is wiped: its name must
   contain "bench"), prepared with the ``idp`` CLI: ``idp init``, a tenant, a
   user with a password and a confidential client;
2. ``idp serve`` (gunicorn, the production command) on 127.0.0.1 with N
   workers (default: one per CPU core), then again with 1 worker so the figures
   are per core;
3. for each scenario, load from separate processes (raw-socket HTTP/1.1
   clients) for a warm-up then a measured window; refresh tokens come from
   real authorization code flows and each load process chains its own;
4. an in-process cProfile of the token endpoint (bench/profile_token.py);
5. the figures in bench/results/ (JSON) and docs/performance.md.

Every request goes to 127.0.0.1; the server is stopped at the end, even on error.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import queue as queue_module
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from array import array
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from loadgen import BenchError, Connection, client_process, code_flow
from report import write_report

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "performance.md"

SCENARIOS = ["client_credentials", "refresh", "discovery", "jwks", "userinfo", "introspection",
             "login"]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def parse_args() -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description="Benchmark the IdP under gunicorn.")
    parser.add_argument("--workers", type=int, default=env_int("IDP_BENCH_WORKERS", cores),
                        help="gunicorn workers (default: one per CPU core, %(default)s)")
    parser.add_argument("--clients", type=int, default=env_int("IDP_BENCH_CLIENTS", 0),
                        help="load processes per scenario (default: 2 per worker)")
    parser.add_argument("--duration", type=float,
                        default=env_float("IDP_BENCH_DURATION", 10.0),
                        help="measured seconds per scenario (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=env_float("IDP_BENCH_WARMUP", 2.0),
                        help="warm-up seconds per scenario (default %(default)s)")
    parser.add_argument("--single-worker-duration", type=float,
                        default=env_float("IDP_BENCH_SINGLE_DURATION", 8.0),
                        help="measured seconds in the 1-worker run (default %(default)s)")
    parser.add_argument("--no-single-worker", action="store_true",
                        help="skip the 1-worker (per core) run")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated subset of: " + ", ".join(SCENARIOS))
    parser.add_argument("--half-close", action="store_true",
                        help="diagnostic: load clients send FIN right after each request, so "
                             "gunicorn's lingering close does not wait for them")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the in-process profile of the token endpoint")
    parser.add_argument("--output", default=None,
                        help="report path (default: docs/performance.md, written only by a "
                             "complete run: every scenario, the 1-worker run and the profile)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance")
    args = parser.parse_args()
    args.clients = args.clients or 2 * args.workers
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.workers < 1 or args.clients < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("workers, clients and duration must be positive")
    return args


# --- processes and CPU accounting ------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def system_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresBackends:
    """CPU of the PostgreSQL backends serving the bench database (local server only)."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(url) if self._local(url) else None
        self.conn = self.engine.connect() if self.engine is not None else None

    @staticmethod
    def _local(url: str) -> bool:
        return (urlsplit(url).hostname or "localhost") in ("127.0.0.1", "localhost", "::1")

    def cpu(self) -> float:
        if self.conn is None:
            return 0.0
        from sqlalchemy import text

        pids = self.conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")).scalars().all()
        self.conn.rollback()
        return sum(cpu_seconds(pid) for pid in pids)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.engine.dispose()


class Server:
    """`idp serve` (gunicorn) started by us, in its own process group, stopped by its id."""

    def __init__(self, env: dict, workers: int, port: int, logfile: Path):
        self.env, self.workers, self.port, self.logfile = env, workers, port, logfile
        self.proc: subprocess.Popen | None = None
        self.database: PostgresBackends | None = None

    def start(self) -> None:
        command = [str(VENV_BIN / "idp"), "serve", "--workers", str(self.workers),
                   "--host", "127.0.0.1", "--port", str(self.port)]
        self.command = command
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        conn = Connection(self.port, timeout=5)
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the server exited with status {self.proc.returncode} before "
                                 f"/readyz answered; its log:\n{self.log_tail()}")
            try:
                response = conn.request("GET", "/readyz")
                if response.status == 200:
                    return
                last = response.describe()
            except (BenchError, OSError) as exc:
                last = repr(exc)
                conn.close()
            time.sleep(0.1)
        raise BenchError(f"/readyz did not answer 200 within {READY_TIMEOUT:.0f} s "
                         f"(last: {last}); server log:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        return [self.proc.pid, *children_of(self.proc.pid)] if self.proc else []

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of master and workers
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group we created with start_new_session
            proc.wait(5)


# --- setup -----------------------------------------------------------------------------------


def reset_postgres(url: str) -> str:
    """Wipe the bench database (only one whose name says it is for benchmarks)."""
    from sqlalchemy import create_engine, text

    name = urlsplit(url).path.lstrip("/")
    if name == "test" or "bench" not in name:
        raise BenchError(f"IDP_BENCH_DATABASE_URL names database {name!r}: it would be wiped, so "
                         "its name must contain 'bench' (e.g. createdb -h 127.0.0.1 -U postgres "
                         "bench_db)")
    from sqlalchemy.exc import SQLAlchemyError

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


def idp(env: dict, *args: str) -> str:
    command = [str(VENV_BIN / "idp"), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise BenchError(f"`idp {' '.join(args[:2])}` failed ({done.returncode}):\n"
                         f"{done.stdout}\n{done.stderr}")
    return done.stdout


def last_json(output: str) -> dict:
    for line in reversed(output.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise BenchError(f"no JSON in the CLI output: {output!r}")


def prepare_instance(env: dict, instance: Path) -> dict:
    """`idp init`, a tenant, a user with a password, a confidential client: their credentials."""
    email, password = "loadtest@bench.example", "Pw-" + secrets.token_urlsafe(18)
    redirect_uri = "http://127.0.0.1:9/bench/callback"  # never fetched: the code is read off
    idp(env, "init")
    idp(env, "tenant", "create", "bench", "--name", "Bench")
    idp(env, "user", "create", "--tenant", "bench", "--email", email, "--password", password)
    registered = last_json(idp(
        env, "client", "create", "--name", "Bench client", "--redirect-uri", redirect_uri,
        "--tenant", "bench", "--grant-type", "authorization_code", "--grant-type",
        "refresh_token", "--grant-type", "client_credentials", "--json"))
    creds = {"client_id": registered["client_id"], "client_secret": registered["client_secret"],
             "email": email, "password": password, "redirect_uri": redirect_uri}
    path = instance / "bench_creds.json"
    path.write_text(json.dumps(creds))
    path.chmod(0o600)
    return creds


# --- scenarios -------------------------------------------------------------------------------


def percentile(sorted_values, fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def run_scenario(name: str, server: Server, ctx: dict, processes: int, warmup: float,
                 duration: float) -> dict:
    mp = multiprocessing.get_context("fork")
    results_queue = mp.Queue()
    t0 = time.monotonic() + 0.5
    procs = [mp.Process(target=client_process, daemon=True,
                        args=(name, slot, server.port, ctx, t0, warmup, duration, results_queue))
             for slot in range(processes)]
    for proc in procs:
        proc.start()
    try:
        window_start = t0 + warmup
        time.sleep(max(0.0, window_start - time.monotonic()))
        server_cpu0 = server.cpu()
        db_cpu0 = server.database.cpu() if server.database else 0.0
        client_cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        busy0, total0 = system_busy()
        wall0 = time.monotonic()
        time.sleep(max(0.0, window_start + duration - time.monotonic()))
        wall = time.monotonic() - wall0
        server_cores = (server.cpu() - server_cpu0) / wall
        db_cores = ((server.database.cpu() - db_cpu0) / wall) if server.database else None
        client_cores = (sum(cpu_seconds(p.pid) for p in procs) - client_cpu0) / wall
        busy1, total1 = system_busy()
        machine_busy = (busy1 - busy0) / max(1, total1 - total0)
        other_cores = max(0.0, machine_busy * CORES - server_cores - client_cores
                          - (db_cores or 0.0))
        reports = []
        deadline = time.monotonic() + 60
        while len(reports) < processes and time.monotonic() < deadline:
            try:
                reports.append(results_queue.get(timeout=1))
            except queue_module.Empty:
                if not any(p.is_alive() for p in procs) and results_queue.empty():
                    break
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()  # one of our own load processes, by its handle
                proc.join(5)
    latencies = array("d")
    errors = warmup_errors = requests = connects = 0
    samples, fatal = [], []
    for report in reports:
        chunk = array("d")
        chunk.frombytes(report["latencies"])
        latencies.extend(chunk)
        errors += report["errors"]
        warmup_errors += report["warmup_errors"]
        requests += report["requests"]
        connects += report["connects"]
        samples.extend(s for s in report["samples"] if s not in samples)
        if report["fatal"]:
            fatal.append(f"process {report['slot']}: {report['fatal']}")
    if len(reports) < processes:
        fatal.append(f"{processes - len(reports)} load process(es) never reported")
    ordered = sorted(latencies)
    rps = len(ordered) / duration
    return {
        "scenario": name, "workers": server.workers, "processes": processes,
        "duration": duration, "warmup": warmup, "ok": len(ordered), "rps": rps,
        "p50_ms": (percentile(ordered, 0.50) or 0) * 1000,
        "p99_ms": (percentile(ordered, 0.99) or 0) * 1000,
        "mean_ms": (sum(ordered) / len(ordered) * 1000) if ordered else 0,
        "errors": errors, "warmup_errors": warmup_errors, "error_samples": samples[:5],
        "fatal": fatal, "server_cpu_cores": server_cores, "client_cpu_cores": client_cores,
        "machine_busy": machine_busy, "other_cpu_cores": other_cores,
        "database_cpu_cores": db_cores, "requests_sent": requests, "tcp_connects": connects,
        "rps_per_server_core": rps / server_cores if server_cores > 0.05 else None,
    }


def run_server(env: dict, args, workers: int, port: int, creds: dict, duration: float,
               logdir: Path, results: list[dict]) -> None:
    """One server (N workers): every scenario; each result is appended as soon as it is in."""
    server = Server(env, workers, port, logdir / f"server-{workers}w.log")
    if env["IDP_DATABASE_URL"].startswith("postgresql"):
        server.database = PostgresBackends(env["IDP_DATABASE_URL"])
    log(f"starting `idp serve` with {workers} worker(s) on 127.0.0.1:{port}")
    try:
        server.start()
        log(f"ready; pids {server.pids()}")
        processes = args.clients if workers == args.workers else 2 * workers
        ctx = {"creds": creds, "half_close": args.half_close}
        if {"refresh", "userinfo", "introspection"} & set(args.scenarios):
            log(f"{processes + 1} authorization code flows over HTTP (PKCE, login form, code "
                "exchange) for refresh tokens and an access token")
            flows = [code_flow(port, creds) for _ in range(processes + 1)]
            ctx["access_token"] = flows[0]["access_token"]
            ctx["refresh_tokens"] = [f["refresh_token"] for f in flows[1:]]
        for name in args.scenarios:
            concurrency = workers if name == "login" else processes
            result = run_scenario(name, server, ctx, concurrency, args.warmup, duration)
            results.append(result)
            problems = ""
            if result["errors"] or result["fatal"]:
                problems = f"; ERRORS {result['errors']} {result['error_samples'][:2]} " \
                           f"{result['fatal'][:2]}"
            log(f"{workers}w {name:18} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:6.2f} "
                f"ms  p99 {result['p99_ms']:7.2f} ms  server CPU {result['server_cpu_cores']:.2f}"
                f" cores, database {result['database_cpu_cores'] or 0:.2f}, load "
                f"{result['client_cpu_cores']:.2f}, others {result['other_cpu_cores']:.2f}"
                f"{problems}")
        if server.proc is not None and server.proc.poll() is not None:
            raise BenchError(f"the server died during the run:\n{server.log_tail()}")
        errors_in_log = [line for line in server.log_tail(400).splitlines()
                         if "Traceback" in line or "ERROR" in line or "CRITICAL" in line]
        if errors_in_log:
            log(f"server log has {len(errors_in_log)} error line(s); see below")
            print(server.log_tail(60))
    finally:
        server.stop()
        if server.database is not None:
            server.database.close()
        log(f"stopped the {workers}-worker server")


def speed_index() -> float:
    """A fixed pure-Python workload (ms, best of 5): shared VMs change speed over time, and this
    tells two runs' machines apart."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += (i * i) % 7
        best = min(best, time.perf_counter() - started)
    return best * 1000


def machine_info(database: str) -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("Flask", "Authlib", "joserfc", "SQLAlchemy", "gunicorn", "psycopg",
                    "argon2-cffi", "cryptography"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    return {"cpu_model": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "speed_index_ms": speed_index(),
            "kernel": platform.release(), "database": database, "packages": versions}


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    db_url = os.environ.get("IDP_BENCH_DATABASE_URL") or None
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    results: list[dict] = []
    instance = tmp / "instance"
    instance.mkdir()

    def on_sigterm(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update({
            "IDP_INSTANCE_DIR": str(instance), "IDP_KEYS_DIR": str(instance / "keys"),
            "IDP_ISSUER": f"http://localhost:{port}", "IDP_HOST": "127.0.0.1",
            "IDP_PORT": str(port),
            "IDP_DATABASE_URL": db_url or f"sqlite:///{instance / 'idp.sqlite3'}",
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
            # All load comes from 127.0.0.1: lift the per-IP login limit (the counting stays).
            "IDP_LOGIN_IP_LIMIT": "1000000000",
        })
        if db_url:
            database = reset_postgres(db_url)
            backend = "postgresql"
        else:
            database = f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
            backend = "sqlite"
        log(f"instance {instance}; database {database}")
        busy0, total0 = system_busy()
        time.sleep(0.5)
        busy1, total1 = system_busy()
        foreign = (busy1 - busy0) / max(1, total1 - total0) * CORES
        if foreign > 0.25:
            log(f"WARNING: the machine is already busy ({foreign:.2f} cores in use by other "
                "processes); figures will be low and noisy (see the 'others' column)")
        creds = prepare_instance(env, instance)
        log(f"`idp init`, tenant, user and client ready ({time.monotonic() - started:.1f} s)")
        runs = [(args.workers, args.duration)]
        if args.workers > 1 and not args.no_single_worker:
            runs.append((1, args.single_worker_duration or args.duration))
        for workers, duration in runs:
            run_server(env, args, workers, port, creds, duration, tmp, results)
        profile = None
        if not args.no_profile:
            log("profiling the token endpoint in-process (cProfile)")
            out = tmp / "profile.json"
            done = subprocess.run(
                [str(VENV_BIN / "python"), str(BENCH / "profile_token.py"), "--creds",
                 str(instance / "bench_creds.json"), "--json", str(out)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
            print(done.stdout, end="")
            if done.returncode != 0:
                log(f"profile failed ({done.returncode}):\n{done.stderr[-3000:]}")
            else:
                profile = json.loads(out.read_text())
        command = " ".join([".venv/bin/python bench/run.py", f"--workers {args.workers}",
                            f"--clients {args.clients}", f"--duration {args.duration:g}",
                            f"--warmup {args.warmup:g}"])
        if len(runs) > 1 and runs[1][1] != args.duration:
            command += f" --single-worker-duration {runs[1][1]:g}"
        if args.half_close:
            command += " --half-close"
        record = {
            "backend": backend,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "invoked_as": (f"IDP_BENCH_DATABASE_URL={_redact(db_url)} " if db_url else "")
            + "make bench",
            "machine": machine_info(database),
            "workers": args.workers, "clients": args.clients,
            "results": results, "profile": profile,
            "runtime_s": time.monotonic() - started,
        }
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        (RESULTS / f"{stamp}-{backend}.json").write_text(json.dumps(record, indent=2))
        complete = (args.scenarios == SCENARIOS and profile is not None
                    and (len(runs) > 1 or args.workers == 1) and not args.half_close)
        records = {}
        if complete:
            (RESULTS / f"latest-{backend}.json").write_text(json.dumps(record, indent=2))
            for name in ("sqlite", "postgresql"):
                path = RESULTS / f"latest-{name}.json"
                if path.exists():
                    records[name] = json.loads(path.read_text())
        else:
            records[backend] = record
        output = args.output or (str(DOC) if complete else None)
        if output:
            write_report(Path(output), records, BENCH / "limits.md")
            log(f"wrote {output}")
        else:
            log("partial run: docs/performance.md left alone (use --output to write a report)")
        log(f"results in {RESULTS / f'{stamp}-{backend}.json'} "
            f"(total {time.monotonic() - started:.0f} s)")
        failed = [r for r in results if r["errors"] or r["fatal"] or not r["ok"]]
        for r in failed:
            log(f"FAILED {r['workers']}w {r['scenario']}: {r['errors']} errors, "
                f"samples {r['error_samples']}, {r['fatal']}")
        return 1 if failed else 0
    except BenchError as exc:
        log(f"FAILED: {exc}")
        if results:
            RESULTS.mkdir(exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            path = RESULTS / f"{stamp}-failed.json"
            path.write_text(json.dumps({"error": str(exc), "results": results}, indent=2))
            log(f"the scenarios that ran are in {path}")
        return 1
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


if __name__ == "__main__":
    sys.exit(main())
