"""Renders docs/performance.md from the latest result of each database backend."""

from __future__ import annotations

from pathlib import Path

LABELS = {
    "client_credentials": "client_credentials grant (`POST /oauth/token`)",
    "refresh": "refresh grant, rotating (`POST /oauth/token`)",
    "discovery": "discovery (`GET /.well-known/openid-configuration`)",
    "jwks": "JWKS (`GET /.well-known/jwks.json`)",
    "userinfo": "userinfo, Bearer access token (`GET /oauth/userinfo`)",
    "introspection": "introspection of an access token (`POST /oauth/introspect`)",
    "login": "login POST, argon2id m=19 MiB t=2 (`POST /login`)",
}
# Per-core targets (requests/s on one core).
TARGETS = {"client_credentials": 600, "refresh": 600, "discovery": 3000, "jwks": 3000}
BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _fmt(value, spec=",.0f", missing="-") -> str:
    return missing if value is None else format(value, spec)


def _errors(result: dict) -> str:
    text = str(result["errors"])
    if result.get("fatal"):
        text += " (" + "; ".join(result["fatal"])[:120].replace("|", "/") + ")"
    return text


def _results_table(record: dict) -> list[str]:
    with_db = any(r.get("database_cpu_cores") is not None for r in record["results"])
    header = ("| Scenario | Workers | Load procs | Requests/s | p50 ms | p99 ms | Errors "
              "| Server CPU (cores) | Requests/s per server core |"
              + (" Database CPU |" if with_db else "") + " Load procs CPU | Others' CPU |")
    lines = [header, "|---" + "|---:" * (header.count("|") - 2) + "|"]
    ordered = sorted(record["results"], key=lambda r: (list(LABELS).index(r["scenario"]),
                                                       -r["workers"]))
    for r in ordered:
        database = f" {r.get('database_cpu_cores') or 0:.2f} |" if with_db else ""
        lines.append(
            f"| {LABELS[r['scenario']]} | {r['workers']} | {r['processes']} | {_fmt(r['rps'])} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {_errors(r)} "
            f"| {r['server_cpu_cores']:.2f} | {_fmt(r['rps_per_server_core'])} |{database}"
            f" {r['client_cpu_cores']:.2f} | {r.get('other_cpu_cores', 0):.2f} |")
    return lines


def _noise_note(record: dict) -> list[str]:
    worst = max((r.get("other_cpu_cores", 0) for r in record["results"]), default=0)
    if worst < 0.25:
        return ["CPU columns are in cores (1.00 = one core busy for the whole window); "
                "\"Others\" is CPU used by processes that are not part of the benchmark.", ""]
    return [f"**The machine was not quiet**: other processes used up to {worst:.2f} cores "
            "during some windows (\"Others' CPU\"), so those rows understate the server. "
            "\"Requests/s per server core\" divides by the CPU the server actually got and is "
            "the steadier figure; rerun `make bench` on an idle machine for clean numbers.", ""]


def _targets_table(record: dict) -> list[str]:
    by_key = {(r["scenario"], r["workers"]): r for r in record["results"]}
    workers = record["workers"]
    lines = [
        "Per core means requests per second of server CPU: the 1-worker run's requests/s "
        "divided by the CPU its worker actually used (close to its plain requests/s on an idle "
        "machine).",
        "",
        "| Scenario | Target per core | 1 worker: requests/s | 1 worker: per server core "
        f"| {workers} workers: per server core | Met? |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, target in TARGETS.items():
        single = by_key.get((name, 1))
        multi = by_key.get((name, workers)) if workers != 1 else None
        per_core = (single or multi or {}).get("rps_per_server_core")
        if per_core is None:
            continue
        verdict = "yes" if per_core >= target else f"no ({per_core / target:.0%} of target)"
        lines.append(f"| {name} | >= {target:,} | {_fmt(single and single['rps'])} "
                     f"| {_fmt(single and single['rps_per_server_core'])} "
                     f"| {_fmt(multi and multi['rps_per_server_core'])} | {verdict} |")
    return lines


def _comparison(record: dict) -> list[str]:
    """Our per-core figures beside the published reference points."""
    by_key = {(r["scenario"], r["workers"]): r for r in record["results"]}

    def per_core(name):
        result = by_key.get((name, 1)) or by_key.get((name, record["workers"]))
        return result and result["rps_per_server_core"]

    lines = []
    cc, refresh, login = per_core("client_credentials"), per_core("refresh"), per_core("login")
    if cc:
        lines.append(f"- client_credentials: {cc:,.0f}/s per core, {cc / 120:.1f}x Keycloak's "
                     f"sizing (120/s per vCPU) and {cc / 1500:.0%} of node oidc-provider's "
                     "~1,500/s on one core.")
    if refresh:
        lines.append(f"- refresh: {refresh:,.0f}/s per core, {refresh / 120:.1f}x Keycloak's "
                     "sizing (120/s per vCPU).")
    if login:
        lines.append(f"- login: {login:,.0f}/s per core (a login is two requests here: the "
                     f"form and the POST), {login / 15:.1f}x Keycloak's sizing (15/s per vCPU).")
    return ([*lines, ""] if lines else [])


def _profile_section(profile: dict | None) -> list[str]:
    if not profile:
        return ["The in-process profile was not run (`--no-profile`) or failed."]
    lines = [
        "`bench/profile_token.py` calls the WSGI app directly (no HTTP server, no socket, one "
        "core) and profiles it with cProfile, right after the load runs (the VM's speed drift "
        "applies to it as well). Without the profiler:",
        "",
    ]
    for name, data in profile["scenarios"].items():
        lines.append(f"- {name}: {data['cpu_us_per_request']:,.0f} µs of CPU per request, i.e. "
                     f"**{data['rps_per_cpu_second']:,.0f} requests per CPU-second** before any "
                     "HTTP server cost")
    for name, data in profile["scenarios"].items():
        lines += ["", f"Where the time of a {name} request goes (share of self time under "
                  f"cProfile, {data['requests']} requests):", "",
                  "| Library | Share |", "|---|---:|"]
        lines += [f"| {group} | {share:.1%} |" for group, share in data["groups"][:10]]
        lines += ["", "<details><summary>Top functions by self time and by cumulative "
                  "time</summary>", "", "| Function (self time) | Share | Calls per request |",
                  "|---|---:|---:|"]
        lines += [f"| `{fn}` | {share:.1%} | {calls:.4g} |"
                  for fn, share, calls in data["top_self"][:15]]
        lines += ["", "| Function (cumulative) | Share | Calls per request |", "|---|---:|---:|"]
        lines += [f"| `{fn}` | {share:.1%} | {calls:.4g} |"
                  for fn, share, calls in data["top_cumulative"][:20]]
        lines += ["", "</details>"]
    return lines


def _backend_section(record: dict) -> list[str]:
    machine = record["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    single = any(r["workers"] == 1 for r in record["results"]) and record["workers"] > 1
    lines = [
        f"## {BACKEND_NAMES[record['backend']]}",
        "",
        f"- Date: {record['date']}",
        f"- Machine: {machine['cpu_model']}, {machine['cores']} cores as seen by the OS, "
        f"Linux {machine['kernel']}",
        f"- Python {machine['python']}; {packages}",
        f"- Speed index: {machine.get('speed_index_ms', 0):.1f} ms for a fixed pure-Python loop "
        "(lower is faster; this VM's speed drifts with its host's load, so compare runs with it)",
        f"- Database: {machine['database']}",
        f"- Command: `{record['invoked_as']}`, i.e. `{record['command']}` "
        f"(total {record['runtime_s']:.0f} s)",
        f"- Server: `idp serve --workers {record['workers']}` (gunicorn sync workers, access "
        "log on, as in production)" + (", then `--workers 1` for the per-core figures"
                                       if single else ""),
        "",
        *_results_table(record),
        "",
        *_noise_note(record),
        "### Against the targets",
        "",
        *_targets_table(record),
        "",
        *_comparison(record),
        "### In-process profile of the token endpoint",
        "",
        *_profile_section(record.get("profile")),
        "",
    ]
    return lines


def write_report(path: Path, records: dict, limits_file: Path) -> None:
    lines = [
        "# Performance",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit the figures by hand. The "
        "\"What limits it\" section comes from `bench/limits.md`.",
        "",
        "## How it is measured",
        "",
        "- A fresh instance in a temporary directory, prepared with the `idp` CLI (`idp init`, "
        "a tenant, a user with a password, a confidential client with the authorization_code, "
        "refresh_token and client_credentials grants).",
        "- The server is `idp serve` (gunicorn, sync workers) on 127.0.0.1, first with one "
        "worker per core, then with one worker: the 1-worker row is the per-core figure. The "
        "machine has few cores and the load processes share them with the server, so the "
        "table also gives requests/s per core of server CPU actually used (from /proc).",
        "- Load comes from separate processes (multiprocessing), each a raw-socket HTTP/1.1 "
        "client that keeps connections alive when allowed; gunicorn's sync workers close "
        "every connection, so each request pays a TCP connect, included in the latency. Each "
        "scenario runs a warm-up, then a measured window; latency is measured from sending "
        "the request to the end of the response, and includes waiting in the listen queue.",
        "- Refresh tokens come from real authorization code flows over HTTP (PKCE, the login "
        "form with its CSRF token and session cookie, the redirect, the code exchange); each "
        "refresh consumes its token and returns the next one, so every load process chains "
        "its own. Userinfo and introspection use a user's access token from such a flow.",
        "- The login scenario runs as many load processes as workers; each fetches the login "
        "form (not timed) and times the POST (argon2id verification, session rotation). All "
        "load comes from 127.0.0.1, so the per-IP login limit is raised "
        "(`IDP_LOGIN_IP_LIMIT`); its counter still runs.",
        "- Errors are answers other than the expected one (200, 303 for the login POST) and "
        "failed connections.",
        "",
        "## Targets and reference points",
        "",
        "- client_credentials and refresh grants: >= 600 requests/s per core;",
        "  discovery and JWKS: >= 3,000 requests/s per core.",
        "- Keycloak's published sizing: one vCPU per ~120 client-credentials grants/s, per ~120 "
        "refresh-token requests/s and per ~15 password logins/s "
        "(<https://www.keycloak.org/high-availability/single-cluster/"
        "concepts-memory-and-cpu-sizing>; its figures include TLS, ours are plain HTTP on "
        "loopback).",
        "- node oidc-provider: ~1,500 ES256 client_credentials grants/s on one core.",
        "",
    ]
    for name in ("sqlite", "postgresql"):
        if name in records:
            lines += _backend_section(records[name])
    lines += ["## What limits it", ""]
    if limits_file.exists():
        lines.append(limits_file.read_text().strip())
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
