"""What would an optimisation buy? Candidate changes applied in-process, measured in CPU time.

Each candidate is a monkeypatch of the running app (nothing under idp/ is
edited) that stands in for a proposed code change. Every scenario is measured
with and without each candidate, in alternating rounds, as CPU microseconds
per request (``time.process_time``, so a busy machine skews it less than the
wall clock); the best round counts. Run against an instance prepared by
``bench/run.py --keep``:

    IDP_INSTANCE_DIR=... IDP_KEYS_DIR=... IDP_ISSUER=... IDP_DATABASE_URL=... \\
        .venv/bin/python bench/whatif.py --creds .../bench_creds.json

On a shared, busy machine CPU time is still noisy (other processes thrash the
caches). ``--instructions`` counts instructions instead, which does not depend
on the neighbours; run it under callgrind (about 100 times slower):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg/out \
        .venv/bin/python bench/whatif.py --creds ... --instructions /tmp/cg/out \
        --rounds 1 --requests 30

These are prototypes to size the gains, not the implementations: they skip
invalidation and error paths that the real change must handle.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from profile_token import InProcessClient, Scenarios, _basic, _code_flow  # noqa: E402


@contextmanager
def patched(target, name: str, value):
    missing = object()
    old = target.__dict__.get(name, missing) if hasattr(target, "__dict__") else missing
    setattr(target, name, value)
    try:
        yield
    finally:
        if old is missing:
            delattr(target, name)
        else:
            setattr(target, name, old)


# --- candidates ------------------------------------------------------------------------------


@contextmanager
def client_cache(app):
    """AuthorizationServer.query_client: a per-process cache of the client (TTL 30 s)."""
    from idp.extensions import db

    server = app.extensions["idp_oauth"]
    original = type(server).query_client
    cache: dict = {}

    def query_client(client_id):
        hit = cache.get(client_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        client = original(server, client_id)
        if client is not None:
            db.session.expunge(client)
            cache[client_id] = (now + 30, client)
        return client

    # Authlib's ClientAuthentication captured the bound method when methods were registered.
    with patched(server, "query_client", query_client), \
            patched(server._client_auth, "query_client", query_client):
        yield


@contextmanager
def core_insert(app):
    """AuthorizationServer.save_token: a Core INSERT instead of session.add + unit-of-work flush."""
    from sqlalchemy import insert

    from idp.extensions import db
    from idp.models import Token

    server = app.extensions["idp_oauth"]
    statement = insert(Token)
    columns = [c.key for c in Token.__table__.columns if c.key != "id"]

    def save_token(token, request):
        row = request.token_row
        db.session.execute(statement, {k: getattr(row, k) for k in columns})

    with patched(server, "save_token", save_token):
        yield


@contextmanager
def stateless_client_credentials(app):
    """No oauth_tokens row for client_credentials tokens (revocation by a deny-list instead)."""
    from idp.extensions import db

    server = app.extensions["idp_oauth"]

    def save_token(token, request):
        if request.payload.grant_type != "client_credentials":
            db.session.add(request.token_row)

    with patched(server, "save_token", save_token):
        yield


@contextmanager
def refresh_one_query(app):
    """Refresh: token, grant, user and org role in one SELECT; the user kept; a plain UPDATE."""
    from flask import g
    from sqlalchemy import and_, select, update

    from idp.extensions import db
    from idp.models import Grant, Membership, Tenant, Token, User
    from idp.models.oauth import digest
    from idp.oauth import grants
    from idp.services import tokens

    query = (select(Token, Grant, User, Tenant.slug, Membership.role)
             .outerjoin(Grant, Grant.id == Token.grant_id)
             .outerjoin(User, User.id == Token.user_id)
             .outerjoin(Tenant, Tenant.id == Token.tenant_id)
             .outerjoin(Membership, and_(Membership.tenant_id == Token.tenant_id,
                                         Membership.user_id == Token.user_id)))
    original_org_context = tokens.org_context

    def authenticate_refresh_token(self, refresh_token):
        if not isinstance(refresh_token, str) or len(refresh_token) > 256:
            return None
        found = db.session.execute(query.where(Token.refresh_hash == digest(refresh_token))).first()
        if found is None:
            return None
        row, grant, user, slug, role = found
        if row.rotated_at is not None and row.grant_id is not None:
            tokens.revoke_grant(row.grant_id)
            db.session.commit()
            return None
        if not tokens.refresh_token_active(row):
            return None
        if user is None or not user.active:
            return None
        self._user = user  # a strong reference: the identity map alone is weak
        self._grant = grant
        if slug is not None:
            g.bench_org = {(row.user_id, row.tenant_id): tokens.OrgContext(row.tenant_id, slug,
                                                                          role)}
        return row

    def authenticate_user(self, row):
        user = getattr(self, "_user", None)
        if user is not None and user.id == row.user_id:
            return user
        user = db.session.get(User, row.user_id) if row.user_id else None
        return user if user is not None and user.active else None

    def revoke_old_credential(self, row):
        rotated = db.session.execute(
            update(Token).where(Token.id == row.id, Token.rotated_at.is_(None))
            .values(rotated_at=int(time.time()))
            .execution_options(synchronize_session=False)).rowcount
        if rotated != 1:
            db.session.rollback()
            raise grants.InvalidGrantError()

    def org_context(user_id, tenant_id):
        cached = (g.get("bench_org") or {}).get((user_id, tenant_id))
        return cached if cached is not None else original_org_context(user_id, tenant_id)

    with ExitStack() as stack:
        cls = grants.RefreshTokenGrant
        stack.enter_context(patched(cls, "authenticate_refresh_token",
                                    authenticate_refresh_token))
        stack.enter_context(patched(cls, "authenticate_user", authenticate_user))
        stack.enter_context(patched(cls, "revoke_old_credential", revoke_old_credential))
        stack.enter_context(patched(tokens, "org_context", org_context))
        yield


@contextmanager
def refresh_core_claim(app):
    """Refresh without ORM entities: one UPDATE ... RETURNING claims the old token (it is the
    rotation and the single-use check at once), one SELECT brings grant, user and org role,
    a Core INSERT stores the new token. 3 statements instead of 8."""
    from types import SimpleNamespace

    from flask import g
    from sqlalchemy import and_, bindparam, insert, select, update

    from idp.extensions import db
    from idp.models import Grant, Membership, Tenant, Token, User
    from idp.models.oauth import digest
    from idp.oauth import grants
    from idp.services import tokens

    table = Token.__table__
    claim = (update(table)
             .where(table.c.refresh_hash == bindparam("h"), table.c.client_id == bindparam("cid"),
                    table.c.rotated_at.is_(None), table.c.revoked_at.is_(None),
                    table.c.refresh_expires_at > bindparam("now"))
             .values(rotated_at=bindparam("now"))
             .returning(table.c.id, table.c.grant_id, table.c.user_id, table.c.tenant_id,
                        table.c.scope, table.c.client_id))
    details = (select(Grant.__table__.c.id, Grant.auth_time, Grant.acr, Grant.amr, Grant.sid,
                      Grant.created_at, Grant.revoked_at, Grant.tenant_id, Grant.user_id,
                      User.__table__.c.sub, User.active, Tenant.slug, Membership.role)
               .select_from(Grant.__table__)
               .join(User.__table__, User.__table__.c.id == Grant.user_id)
               .outerjoin(Tenant.__table__, Tenant.__table__.c.id == Grant.tenant_id)
               .outerjoin(Membership.__table__, and_(Membership.tenant_id == Grant.tenant_id,
                                                     Membership.user_id == Grant.user_id))
               .where(Grant.__table__.c.id == bindparam("gid")))
    store = insert(table)
    columns = [c.key for c in table.columns if c.key != "id"]
    server = app.extensions["idp_oauth"]
    original_org_context = tokens.org_context
    previous_save = server.save_token  # whatever is in place (another candidate's, maybe)

    def authenticate_refresh_token(self, refresh_token):
        if not isinstance(refresh_token, str) or len(refresh_token) > 256:
            return None
        now = int(time.time())
        conn = db.session.connection()
        row = conn.execute(claim, {"h": digest(refresh_token),
                                   "cid": self.request.client.client_id, "now": now}).first()
        if row is None:
            return None  # the real change looks up why here (replay: revoke the family)
        info = conn.execute(details, {"gid": row.grant_id}).first()
        if info is None or info.revoked_at is not None or not info.active:
            db.session.rollback()
            return None
        grant = SimpleNamespace(id=info.id, auth_time=info.auth_time, acr=info.acr,
                                amr=info.amr, sid=info.sid, created_at=info.created_at,
                                tenant_id=info.tenant_id, user_id=info.user_id)
        self._user = SimpleNamespace(id=row.user_id, sub=info.sub, active=info.active)
        if info.slug is not None:
            g.bench_org = {(info.user_id, info.tenant_id): tokens.OrgContext(
                info.tenant_id, info.slug, info.role)}
        return SimpleNamespace(id=row.id, grant=grant, scope=row.scope, user_id=row.user_id,
                               check_client=lambda client: client.client_id == row.client_id,
                               get_scope=lambda: row.scope)

    def authenticate_user(self, row):
        return self._user

    def revoke_old_credential(self, row):
        return None  # claimed by the UPDATE already

    def org_context(user_id, tenant_id):
        cached = (g.get("bench_org") or {}).get((user_id, tenant_id))
        return cached if cached is not None else original_org_context(user_id, tenant_id)

    def save_token(token, request):
        if request.payload.grant_type != "refresh_token":
            return previous_save(token, request)
        token_row = request.token_row
        db.session.connection().execute(store, {k: getattr(token_row, k) for k in columns})
        return None

    with ExitStack() as stack:
        cls = grants.RefreshTokenGrant
        stack.enter_context(patched(cls, "authenticate_refresh_token",
                                    authenticate_refresh_token))
        stack.enter_context(patched(cls, "authenticate_user", authenticate_user))
        stack.enter_context(patched(cls, "revoke_old_credential", revoke_old_credential))
        stack.enter_context(patched(tokens, "org_context", org_context))
        stack.enter_context(patched(server, "save_token", save_token))
        yield


@contextmanager
def introspect_once(app):
    """Introspection of an access token: decode the JWT and load its row once, not twice
    (endpoints._find_token, then tokens.active_access_token did it again)."""
    from flask import g
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import User
    from idp.oauth import endpoints
    from idp.services import tokens

    original_find = endpoints._find_token
    original_active = tokens.active_access_token

    def find_token(value, hint):
        if hint == "access_token" and isinstance(value, str) and len(value) <= 8192:
            claims = tokens.decode_access_token(endpoints._keys(), endpoints._issuer(), value)
            if claims and isinstance(claims.get("jti"), str):
                row = db.session.scalar(select(tokens.Token).where(
                    tokens.Token.jti == claims["jti"]))
                g.bench_found = (value, claims, row)
                return row, "access_token"
        return original_find(value, hint)

    def active_access_token(keystore, issuer, access_token):
        found = g.get("bench_found")
        if found is None or found[0] != access_token:
            return original_active(keystore, issuer, access_token)
        _, claims, row = found
        if row is None or row.revoked_at is not None or not tokens.grant_alive(row):
            return None
        if row.user_id is not None and not db.session.scalar(
                select(User.active).where(User.id == row.user_id)):
            return None
        return claims, row

    with patched(endpoints, "_find_token", find_token), \
            patched(tokens, "active_access_token", active_access_token):
        yield


@contextmanager
def cached_ensure_sync(app):
    """Flask.ensure_sync memoised: inspect.iscoroutinefunction runs once per hook, not per call."""
    original = app.ensure_sync
    cache: dict = {}

    def ensure_sync(func):
        try:
            return cache[func]
        except KeyError:
            result = cache[func] = original(func)
            return result
        except TypeError:
            return original(func)

    with patched(app, "ensure_sync", ensure_sync):
        yield


@contextmanager
def lean_api_headers(app):
    """Machine endpoints: a constant CSP without a nonce, and no per-request metrics lock."""
    from idp import security

    api = ("/oauth/token", "/oauth/userinfo", "/oauth/introspect", "/oauth/revoke",
           "/.well-known/", "/healthz", "/readyz")
    static = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
              "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
              "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"}
    funcs = app.after_request_funcs[None]
    index = funcs.index(security.set_security_headers)

    def headers(response):
        from flask import request

        if request.path.startswith(api):
            for name, value in static.items():
                response.headers.setdefault(name, value)
            return response
        return security.set_security_headers(response)

    funcs[index] = headers
    try:
        yield
    finally:
        funcs[index] = security.set_security_headers


@contextmanager
def cached_jwks_bytes(app):
    """The JWKS view returns bytes serialised once per key-set version (like discovery)."""
    from flask import Response

    keys = app.extensions["idp_keys"]
    cache: dict = {}

    def jwks():
        document = keys.jwks()
        body = cache.get(id(document))
        if body is None:
            cache.clear()
            body = cache[id(document)] = app.json.dumps(document)
        return Response(body, mimetype="application/json",
                        headers={"Cache-Control": "public, max-age=300"})

    with _dict_item(app.view_functions, "oauth.jwks", jwks):
        yield


@contextmanager
def static_documents_wsgi(app):
    """Discovery and JWKS answered by a WSGI wrapper in front of Flask, from bytes kept per
    key-set version, with the same headers as the Flask views (security headers included)."""
    from idp.oauth.endpoints import discovery_document

    keys = app.extensions["idp_keys"]
    inner = app.wsgi_app
    with app.app_context():
        discovery = app.json.dumps(discovery_document(app.config["IDP_ISSUER"])).encode()
    common = [("Content-Type", "application/json"), ("Cache-Control", "public, max-age=300"),
              ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
              ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
              ("Referrer-Policy", "no-referrer"), ("Cross-Origin-Opener-Policy", "same-origin")]
    jwks_cache: dict = {}

    def wsgi_app(environ, start_response):
        path = environ.get("PATH_INFO")
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            if path == "/.well-known/openid-configuration":
                body = discovery
            elif path == "/.well-known/jwks.json":
                document = keys.jwks()
                body = jwks_cache.get(id(document))
                if body is None:
                    jwks_cache.clear()
                    body = jwks_cache[id(document)] = app.json.dumps(document).encode()
            else:
                return inner(environ, start_response)
            start_response("200 OK", [*common, ("Content-Length", str(len(body)))])
            return [body]
        return inner(environ, start_response)

    with patched(app, "wsgi_app", wsgi_app):
        yield


@contextmanager
def _dict_item(mapping: dict, key, value):
    old = mapping[key]
    mapping[key] = value
    try:
        yield
    finally:
        mapping[key] = old


@contextmanager
def one_pass_param_check(app):
    """endpoints._token_request_error: one pass over the parsed form instead of 20 lookups."""
    from flask import request

    from idp.oauth import endpoints

    names = frozenset(endpoints.TOKEN_PARAMS)

    def check():
        form = request.form
        if not form.get("grant_type"):
            return "Missing 'grant_type'."
        if request.args:
            for name in request.args:
                if name in names:
                    return f"'{name}' must be sent in the request body."
        for name, values in form.lists():
            if len(values) > 1 and name in names:
                return f"Multiple '{name}' in request."
        return None

    with patched(endpoints, "_token_request_error", check):
        yield


@contextmanager
def direct_es256_sign(app):
    """KeyStore.sign for ES256: header encoded once per key, claims signed with cryptography."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    keys = app.extensions["idp_keys"]
    original = type(keys).sign
    headers: dict = {}

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    def sign(claims, alg="ES256", typ="JWT"):
        if alg != "ES256":
            return original(keys, claims, alg, typ)
        kid, key = keys.signing_key("ES256")
        header = headers.get((kid, typ))
        if header is None:
            header = headers[(kid, typ)] = b64(json.dumps(
                {"alg": "ES256", "kid": kid, "typ": typ}, separators=(",", ":")).encode())
        signing_input = header + b"." + b64(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(key.private_key.sign(signing_input,
                                                         ec.ECDSA(hashes.SHA256())))
        return (signing_input + b"." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
                ).decode("ascii")

    with patched(keys, "sign", sign):
        yield


CANDIDATES = {
    "client_cache": client_cache,
    "core_insert": core_insert,
    "stateless_client_credentials": stateless_client_credentials,
    "refresh_one_query": refresh_one_query,
    "cached_ensure_sync": cached_ensure_sync,
    "lean_api_headers": lean_api_headers,
    "cached_jwks_bytes": cached_jwks_bytes,
    "one_pass_param_check": one_pass_param_check,
    "direct_es256_sign": direct_es256_sign,
    "static_documents_wsgi": static_documents_wsgi,
    "refresh_core_claim": refresh_core_claim,
    "introspect_once": introspect_once,
}
RELEVANT = {
    "client_credentials": ["client_cache", "core_insert", "stateless_client_credentials",
                           "cached_ensure_sync", "lean_api_headers", "one_pass_param_check",
                           "direct_es256_sign"],
    "refresh": ["client_cache", "core_insert", "refresh_one_query", "refresh_core_claim",
                "cached_ensure_sync", "lean_api_headers", "one_pass_param_check",
                "direct_es256_sign"],
    "discovery": ["cached_ensure_sync", "lean_api_headers", "static_documents_wsgi"],
    "jwks": ["cached_ensure_sync", "lean_api_headers", "cached_jwks_bytes",
             "static_documents_wsgi"],
    "introspection": ["client_cache", "introspect_once", "cached_ensure_sync",
                      "lean_api_headers"],
}
# Everything compatible, together (stateless client_credentials replaces core_insert there).
ALL = {
    "client_credentials": ["client_cache", "stateless_client_credentials", "cached_ensure_sync",
                           "lean_api_headers", "one_pass_param_check", "direct_es256_sign"],
    "refresh": ["client_cache", "refresh_core_claim", "cached_ensure_sync", "lean_api_headers",
                "one_pass_param_check", "direct_es256_sign"],
    "discovery": ["cached_ensure_sync", "lean_api_headers", "static_documents_wsgi"],
    "jwks": ["cached_ensure_sync", "lean_api_headers", "static_documents_wsgi"],
    "introspection": ["client_cache", "introspect_once", "cached_ensure_sync",
                      "lean_api_headers"],
}


def cpu_per_request(fn, requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        fn()
    return (time.process_time() - started) / requests * 1e6


def instructions_per_request(fn, requests: int, out_prefix: str) -> float:
    """Instructions executed per request, counted by callgrind (this process runs under it)."""
    pid = str(os.getpid())

    def control(*args):
        subprocess.run(["callgrind_control", *args, pid], check=True, capture_output=True)

    before = set(glob.glob(out_prefix + ".*"))
    control("-i", "on")
    for _ in range(requests):
        fn()
    control("-i", "off")
    control("-d")
    dumps = sorted(set(glob.glob(out_prefix + ".*")) - before)
    total = 0
    for line in Path(dumps[-1]).read_text().splitlines():
        if line.startswith("totals:"):
            total = int(line.split()[1])
    return total / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creds", required=True)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(RELEVANT))
    parser.add_argument("--candidates", default="",
                        help="comma-separated subset of candidates (default: all relevant)")
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("--instructions", metavar="CALLGRIND_OUT",
                        help="count instructions (under callgrind, whose --callgrind-out-file "
                             "is CALLGRIND_OUT) instead of CPU time")
    args = parser.parse_args()
    unit = "instructions" if args.instructions else "us CPU"
    scale = 1e-6 if args.instructions else 1.0
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from idp import create_app

    app = create_app()
    creds = json.loads(Path(args.creds).read_text())
    client = InProcessClient(app, app.config["IDP_ISSUER"])
    scenarios = Scenarios(client, creds)
    access_token = _code_flow(client, creds)["access_token"]
    client.cookie = None
    introspect_body = urlencode({"token": access_token,
                                 "token_type_hint": "access_token"}).encode()
    auth = {"Authorization": _basic(creds)}

    def expect_200(status, _location, body):
        if status != 200:
            raise SystemExit(f"whatif: HTTP {status}: {body[:200]!r}")

    calls = {
        "client_credentials": scenarios.client_credentials,
        "refresh": scenarios.refresh,
        "discovery": lambda: expect_200(*client.call("GET", "/.well-known/openid-configuration")),
        "jwks": lambda: expect_200(*client.call("GET", "/.well-known/jwks.json")),
        "introspection": lambda: expect_200(*client.call("POST", "/oauth/introspect",
                                                         introspect_body, auth)),
    }
    results = {}
    for name in [s for s in args.scenarios.split(",") if s]:
        fn = calls[name]
        chosen = [c for c in args.candidates.split(",") if c] or RELEVANT[name]
        variants = {"baseline": []} | {c: [c] for c in RELEVANT[name] if c in chosen}
        if not args.candidates:
            variants["all"] = ALL[name]
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for variant, candidates in variants.items():
                with ExitStack() as stack:
                    for candidate in candidates:
                        stack.enter_context(CANDIDATES[candidate](app))
                    for _ in range(50):
                        fn()
                    if args.instructions:
                        cost = instructions_per_request(fn, args.requests, args.instructions)
                    else:
                        cost = cpu_per_request(fn, args.requests)
                best[variant] = min(cost, best.get(variant, cost))
        base = best["baseline"]
        results[name] = best
        if args.instructions:
            print(f"{name}: baseline {base * scale:,.2f} M instructions/request")
        else:
            print(f"{name}: baseline {base:,.0f} us CPU/request ({1e6 / base:,.0f}/s per core)")
        for variant, cost in best.items():
            if variant == "baseline":
                continue
            rate = "" if args.instructions else f"  -> {1e6 / cost:,.0f}/s per core"
            print(f"    {variant:30} {cost * scale:9,.2f} {unit}  {cost / base - 1:+6.1%}{rate}",
                  flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
