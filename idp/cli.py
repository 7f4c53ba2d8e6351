"""The ``idp`` command (also ``flask --app wsgi idp ...``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import update_wrapper
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from idp.extensions import db
from idp.mail.cli import mail_group
from idp.mail.worker import SERVED_ENV

DEMO_TENANT = "acme"
DEMO_CLIENT_ID = "acme-portal"
DEMO_EMAIL = "demo@acme.test"
DEMO_PASSWORD = "Demo-Passw0rd!"
DEMO_SCOPE = "openid profile email offline_access"
DEMO_GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]

idp_group = AppGroup("idp", help="Identity provider administration.")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _upgrade() -> None:
    from flask_migrate import upgrade

    upgrade(directory=current_app.extensions["migrate"].directory)


def demo_registration(port: int) -> dict:
    """What the demo portal (`python -m demo`, on `port`) is registered with."""
    base = f"http://localhost:{port}"
    return {"redirect_uris": [f"{base}/callback", f"http://127.0.0.1:{port}/callback"],
            "post_logout_redirect_uris": [f"{base}/"],
            "backchannel_logout_uri": f"{base}/backchannel-logout",
            "grant_types": DEMO_GRANT_TYPES}


def _write_demo_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"client_id": DEMO_CLIENT_ID, "client_secret": secret}, handle)


def _seed_demo() -> dict:
    """The demo tenant, user and client; an existing demo client gets the current
    registration, and a new secret when instance/demo_client.json lost it."""
    from idp.factors.assurance import REQUIRED, set_mfa_policy
    from idp.models import Client
    from idp.services import accounts, clients, tenants

    tenant = tenants.get_by_slug(DEMO_TENANT) or tenants.create_tenant(DEMO_TENANT, "Acme Fleet")
    if "mfa_policy" not in (tenant.settings or {}):
        # The seeds' login: password, then the emailed code (printed without SMTP).
        set_mfa_policy(tenant, REQUIRED)
    if accounts.get_by_email(DEMO_EMAIL) is None:
        accounts.create_user(DEMO_EMAIL, DEMO_PASSWORD, tenant=tenant, role="super_admin",
                             given_name="Demo", family_name="User", locale=None)
    secret_file = Path(current_app.config["INSTANCE_DIR"]) / "demo_client.json"
    registration = demo_registration(current_app.config["IDP_DEMO_PORT"])
    client = db.session.query(Client).filter_by(client_id=DEMO_CLIENT_ID).first()
    if client is None:
        registered = clients.create_client("Acme portal (demo)", tenant=tenant,
                                           client_id=DEMO_CLIENT_ID, **registration)
        secret = registered.client_secret
    else:
        scope = " ".join(dict.fromkeys(client.scope.split() + DEMO_SCOPE.split()))
        clients.update_registration(client, **registration, scope=scope)
        try:
            secret = json.loads(secret_file.read_text()).get("client_secret")
        except (OSError, ValueError, AttributeError):
            secret = None
        if not client.check_client_secret(secret):
            secret = clients.new_secret(client)
    db.session.commit()
    _write_demo_secret(secret_file, secret)
    return {"client_id": DEMO_CLIENT_ID, "client_secret": secret}


@idp_group.command("init")
@click.option("--demo", is_flag=True, help="Seed the demo tenant, client and user.")
@with_appcontext
def init_command(demo: bool) -> None:
    """Migrate the database and create signing keys (idempotent)."""
    from idp.oauth.keys import ensure_keys

    _upgrade()
    if ensure_keys(current_app.config["IDP_KEYS_DIR"]):
        click.echo(f"created signing keys in {current_app.config['IDP_KEYS_DIR']}")
    if demo:
        creds = _seed_demo()
        click.echo(f"demo tenant: {DEMO_TENANT}; user: {DEMO_EMAIL} / {DEMO_PASSWORD}")
        uris = demo_registration(current_app.config["IDP_DEMO_PORT"])["redirect_uris"]
        click.echo(f"demo client: {json.dumps(creds)} (redirect URIs: {', '.join(uris)})")
    click.echo("ready")


@idp_group.command("purge")
@with_appcontext
def purge_command() -> None:
    """Delete expired browser sessions, rate-limit windows and revoked-jti entries (cron)."""
    from idp.services.sessions import purge_expired
    from idp.services.throttle import DatabaseCounter
    from idp.services.tokens import purge_revoked_jtis

    sessions = purge_expired()
    counters = DatabaseCounter.purge_expired()
    revoked = purge_revoked_jtis()
    db.session.commit()
    click.echo(json.dumps({"sessions": sessions, "rate_limit_windows": counters,
                           "revoked_jtis": revoked}))


@idp_group.command("serve")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--host", default=None, help="Defaults to IDP_HOST (127.0.0.1).")
@click.option("--port", default=None, type=int, help="Defaults to IDP_PORT (5000).")
@click.option("--server", "server", type=click.Choice(["granian", "gunicorn"]),
              default="granian", show_default=True,
              help="granian keeps connections alive; gunicorn's sync workers close each one.")
@click.option("--no-access-log", is_flag=True, help="Do not log each request to stdout.")
@with_appcontext
def serve_command(workers: int, host: str | None, port: int | None, server: str,
                  no_access_log: bool) -> None:
    """Serve with granian (WSGI, one thread per worker process) or gunicorn.

    SIGHUP restarts the workers gracefully (both servers); SIGTERM stops after the
    requests in flight (10 s at most).
    """
    config = current_app.config
    host, port = host or config["IDP_HOST"], port or config["IDP_PORT"]
    if server == "granian":
        args = [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers",
                str(workers), "--blocking-threads", "1", "--host", host, "--port", str(port),
                "--workers-kill-timeout", "10"]
        args += [] if no_access_log else ["--access-log"]
        args.append("wsgi:app")
    else:
        args = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
                f"{host}:{port}", "--graceful-timeout", "10"]
        args += [] if no_access_log else ["--access-logfile", "-"]
        args.append("wsgi:app")
    click.echo(f"serving {config['IDP_ISSUER']} on http://{host}:{port} with {workers} "
               f"{server} workers")
    os.chdir(Path(__file__).resolve().parent.parent)
    os.environ[SERVED_ENV] = "1"  # its workers start the in-process mail worker at once
    os.execv(sys.executable, args)  # noqa: S606 - replaces this process with the server


keys_group = AppGroup("keys", help="Signing keys.")
idp_group.add_command(keys_group)


@keys_group.command("rotate")
@with_appcontext
def keys_rotate_command() -> None:
    """Promote the published next key, retire the active one, publish a new next key."""
    from idp.oauth.keys import rotate_keys

    config = current_app.config
    retain = 2 * max(config["IDP_ACCESS_TOKEN_TTL"], config["IDP_ID_TOKEN_TTL"]) + 24 * 3600
    entries = rotate_keys(config["IDP_KEYS_DIR"], retain)
    for entry in entries:
        click.echo(f"{entry['alg']} {entry['state']:8} {entry['kid']}")


tenant_group = AppGroup("tenant", help="Tenants.")
idp_group.add_command(tenant_group)


MFA_OPTION = click.option(
    "--mfa", "mfa", type=click.Choice(["optional", "required", "phishing-resistant"]),
    default=None, help="MFA policy: optional (default), required (a second factor at every "
    "sign-in) or phishing-resistant (passkeys only; none exist yet, so sign-in fails).")


@tenant_group.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--no-self-registration", is_flag=True)
@MFA_OPTION
@with_appcontext
def tenant_create_command(slug: str, name: str, no_self_registration: bool,
                          mfa: str | None) -> None:
    from idp.factors.assurance import OPTIONAL, mfa_policy, set_mfa_policy
    from idp.services.tenants import TenantError, create_tenant

    try:
        tenant = create_tenant(slug, name, self_registration=not no_self_registration)
    except TenantError as exc:
        _fail(str(exc))
    set_mfa_policy(tenant, mfa or OPTIONAL)
    db.session.commit()
    click.echo(json.dumps({"id": tenant.id, "slug": tenant.slug, "mfa": mfa_policy(tenant)}))


@tenant_group.command("update")
@click.argument("slug")
@click.option("--name", default=None)
@MFA_OPTION
@click.option("--trust-browser-days", "trust_browser_days", type=click.IntRange(0, 365),
              default=None, help="Skip the second factor in a trusted browser for N days "
              "(0: off).")
@with_appcontext
def tenant_update_command(slug: str, name: str | None, mfa: str | None,
                          trust_browser_days: int | None = None) -> None:
    from idp.factors.assurance import mfa_policy, set_mfa_policy
    from idp.services.tenants import get_by_slug

    tenant = get_by_slug(slug)
    if tenant is None:
        _fail(f"no tenant {slug!r}")
    if name is not None:
        if not name.strip() or len(name) > 200:
            _fail("name is required (at most 200 characters)")
        tenant.name = name.strip()
    if mfa is not None:
        set_mfa_policy(tenant, mfa)
    if trust_browser_days is not None:
        from idp.services.trusted_browsers import set_trust_days

        set_trust_days(tenant, trust_browser_days)
    db.session.commit()
    click.echo(json.dumps({"id": tenant.id, "slug": tenant.slug, "mfa": mfa_policy(tenant)}))


user_group = AppGroup("user", help="Users.")
idp_group.add_command(user_group)


@user_group.command("create")
@click.option("--tenant", "tenant_slug", required=True)
@click.option("--email", required=True)
@click.option("--password", default=None)
@click.option("--role", default="member", show_default=True)
@click.option("--invite", is_flag=True, help="Send the welcome email instead of setting a password.")
@with_appcontext
def user_create_command(tenant_slug: str, email: str, password: str | None, role: str,
                        invite: bool) -> None:
    from idp.services.accounts import AccountError, WeakPassword, create_user, set_password
    from idp.services.tenants import get_by_slug

    tenant = get_by_slug(tenant_slug)
    if tenant is None:
        _fail(f"no tenant {tenant_slug!r}")
    if invite and password:
        _fail("--invite and --password exclude each other: the person chooses the password")
    if invite:
        from idp.services.invitations import invite_user

        try:
            invitation = invite_user(tenant, email, role)
        except AccountError as exc:
            db.session.rollback()
            _fail(str(exc))
        db.session.commit()
        user = invitation.user
        click.echo(json.dumps({"id": user.id, "sub": user.sub, "email": user.email,
                               "invited": True, "created": invitation.created}))
        return
    if not password:
        _fail("--password is required (or --invite)")
    try:
        user = create_user(email, None, tenant=tenant, role=role)
        set_password(user, password)
    except WeakPassword as exc:
        db.session.rollback()
        _fail(f"the password breaks the policy: {', '.join(exc.problems)}")
    except AccountError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(json.dumps({"id": user.id, "sub": user.sub, "email": user.email}))


client_group = AppGroup("client", help="OAuth clients.")
idp_group.add_command(client_group)
idp_group.add_command(mail_group)


@client_group.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--public", is_flag=True, help="A native or browser app without a secret (PKCE).")
@click.option("--tenant", "tenant_slug", default=None)
@click.option("--grant-type", "grant_types", multiple=True)
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True)
@click.option("--backchannel-logout-uri", default=None)
@click.option("--consent", is_flag=True, help="Ask the user's consent (third-party client).")
@click.option("--auth-method", default=None,
              help="Pin one: client_secret_basic, client_secret_post, private_key_jwt (with "
                   "--jwks), none (--public). Default: a secret sent either way (basic or post).")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--id-token-alg", default="RS256", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
@with_appcontext
def client_create_command(name, redirect_uris, public, tenant_slug, grant_types, logout_uris,
                          backchannel_logout_uri, consent, auth_method, jwks_file, id_token_alg,
                          as_json) -> None:
    from idp.services.clients import ClientError, create_client
    from idp.services.tenants import get_by_slug

    tenant = None
    if tenant_slug:
        tenant = get_by_slug(tenant_slug)
        if tenant is None:
            _fail(f"no tenant {tenant_slug!r}")
    jwks = json.loads(Path(jwks_file).read_text()) if jwks_file else None
    try:
        registered = create_client(
            name, list(redirect_uris), public=public, tenant=tenant,
            grant_types=list(grant_types) or None, post_logout_redirect_uris=list(logout_uris),
            backchannel_logout_uri=backchannel_logout_uri, require_consent=consent,
            auth_method=auth_method, jwks=jwks, id_token_alg=id_token_alg)
    except ClientError as exc:
        _fail(str(exc))
    db.session.commit()
    creds = {"client_id": registered.client.client_id, "client_secret": registered.client_secret}
    click.echo(json.dumps(creds) if as_json else
               f"client_id: {creds['client_id']}\nclient_secret: {creds['client_secret']}")


def _ensure_schema() -> None:
    """Stop (exit 2, one line) unless the database is at the latest migration."""
    from sqlalchemy.exc import SQLAlchemyError

    from idp.schema import schema_state

    try:
        state = schema_state(current_app)
    except SQLAlchemyError as exc:
        _fail(f"the database cannot be reached: {getattr(exc, 'orig', None) or exc}")
    if not state.up_to_date:
        _fail(state.describe())


def _schema_checked(callback: Callable) -> Callable:
    def run(*args, **kwargs):
        _ensure_schema()
        return callback(*args, **kwargs)

    checked = with_appcontext(update_wrapper(run, callback))
    checked.idp_schema_checked = True
    return checked


def require_schema(group: click.Group) -> None:
    """Every command but `init` first checks the schema (after parsing: --help still works)."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            require_schema(command)
        elif command is not init_command and not getattr(command.callback,
                                                         "idp_schema_checked", False):
            command.callback = _schema_checked(command.callback)


def register_commands(app: Flask) -> None:
    require_schema(idp_group)
    app.cli.add_command(idp_group)


def main() -> None:
    """Entry point of the ``idp`` console script."""
    from flask.cli import ScriptInfo

    require_schema(idp_group)
    # The factory named as `flask --app` names it: the app imports this module, not back.
    idp_group.main(prog_name="idp", obj=ScriptInfo(app_import_path="idp:create_app"))
