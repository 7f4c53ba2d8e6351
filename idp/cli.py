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
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 32),
              help="granian: Python threads per worker. More overlap the waits on a "
                   "PostgreSQL server; each costs CPU on requests that do not wait.")
@with_appcontext
def serve_command(workers: int, host: str | None, port: int | None, server: str,
                  no_access_log: bool, threads: int) -> None:
    """Serve with granian (WSGI, one thread per worker process unless --threads) or gunicorn.

    SIGHUP restarts the workers gracefully (both servers); SIGTERM stops after the
    requests in flight (10 s at most).
    """
    config = current_app.config
    host, port = host or config["IDP_HOST"], port or config["IDP_PORT"]
    if server == "granian":
        args = [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers",
                str(workers), "--blocking-threads", str(threads), "--host", host, "--port", str(port),
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
    "sign-in) or phishing-resistant (a passkey; people without one register it at their "
    "next sign-in).")


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


def _branding_options(command):
    """The branding options of `idp tenant update` (services/branding.py checks them)."""
    options = [
        click.option("--logo", "logo_path", type=click.Path(dir_okay=False), default=None,
                     help="PNG, JPEG, WebP or SVG (scripts and external references refused)."),
        click.option("--no-logo", is_flag=True, help="Remove the uploaded logo."),
        click.option("--color", default=None,
                     help="#RRGGBB for buttons and links; needs 4.5:1 contrast ('' clears)."),
        click.option("--support-email", default=None, help="Support address ('' clears)."),
        click.option("--support-url", default=None, help="https:// help page ('' clears)."),
        click.option("--display-name", "display_names", multiple=True, metavar="LANG=NAME",
                     help="The name shown in one language, e.g. fr='Acme Flotte'."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _apply_branding(tenant, logo_path, no_logo, color, support_email, support_url,
                    display_names) -> dict:
    from idp.services import branding, logos

    config = current_app.config
    try:
        logo = None
        if logo_path is not None:
            if no_logo:
                raise branding.BrandingError("--logo and --no-logo exclude each other")
            logo = logos.read_logo_file(logo_path, max_bytes=config["IDP_LOGO_MAX_BYTES"],
                                        max_side=config["IDP_LOGO_MAX_SIDE"])
        names = dict(branding.parse_display_name(item, config["IDP_LOCALES"])
                     for item in display_names) if display_names else None
        branding.update(tenant, logo=logo, remove_logo=no_logo, color=color,
                        support_email=support_email, support_url=support_url, names=names)
    except (branding.BrandingError, logos.LogoError) as exc:
        db.session.rollback()
        _fail(str(exc))
    return branding.summary(tenant)


@tenant_group.command("update")
@click.argument("slug")
@click.option("--name", default=None)
@MFA_OPTION
@click.option("--disable/--enable", "disable", default=None,
              help="A disabled tenant signs nobody in; its refresh tokens stop working.")
@click.option("--trust-browser-days", "trust_browser_days", type=click.IntRange(0, 365),
              default=None, help="Skip the second factor in a trusted browser for N days "
              "(0: off).")
@_branding_options
@with_appcontext
def tenant_update_command(slug: str, name: str | None, mfa: str | None,
                          disable: bool | None, trust_browser_days: int | None,
                          **branding_options) -> None:
    from idp.factors.assurance import mfa_policy, set_mfa_policy
    from idp.services.memberships import set_active
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
    if disable is not None:
        set_active(tenant, not disable)
    brand = _apply_branding(tenant, **branding_options)
    db.session.commit()
    click.echo(json.dumps({"id": tenant.id, "slug": tenant.slug, "mfa": mfa_policy(tenant),
                           "active": tenant.active, "branding": brand}))


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
    existing = _existing_account(email)
    if existing is not None and not (invite and _awaiting_activation(existing)):
        _add_membership(tenant, email, role, password, invite)
        return
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


def _existing_account(email: str):
    from idp.services.accounts import AccountError, get_by_email, valid_email

    try:
        return get_by_email(valid_email(email))
    except AccountError:
        return None  # create_user says what is wrong with the address


def _awaiting_activation(user) -> bool:
    """Invited and never activated: --invite again resends the welcome link."""
    from idp.services.invitations import awaiting_activation

    return awaiting_activation(user)


def _add_membership(tenant, email: str, role: str, password: str | None, invite: bool) -> None:
    """`user create` for an address that has an account: the membership only."""
    from idp.services.memberships import MembershipError, add_existing_account

    try:
        membership = add_existing_account(tenant, email, role, password=password, invite=invite)
    except MembershipError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    user = membership.user
    click.echo(json.dumps({"id": user.id, "sub": user.sub, "email": user.email,
                           "tenant": tenant.slug, "role": membership.role, "created": False}))


@user_group.command("remove")
@click.option("--tenant", "tenant_slug", required=True)
@click.option("--email", required=True)
@with_appcontext
def user_remove_command(tenant_slug: str, email: str) -> None:
    """End a membership (the account stays); its refresh tokens for that tenant die."""
    from idp.services.memberships import MembershipError, remove
    from idp.services.tenants import get_by_slug

    tenant = get_by_slug(tenant_slug)
    if tenant is None:
        _fail(f"no tenant {tenant_slug!r}")
    try:
        revoked = remove(tenant, email)
    except MembershipError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(json.dumps({"tenant": tenant.slug, "removed": True, "revoked_grants": revoked}))


client_group = AppGroup("client", help="OAuth clients.")
idp_group.add_command(client_group)
idp_group.add_command(mail_group)


@client_group.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--public", is_flag=True, help="A native or browser app without a secret (PKCE).")
@click.option("--tenant", "tenant_slug", default=None,
              help="Owned by this tenant: serves it alone.")
@click.option("--shared", is_flag=True, help="Shared by every tenant (the default without "
              "--tenant).")
@click.option("--shared-with", "shared_with", default=None,
              help="Shared by these tenants only: SLUG,SLUG.")
@click.option("--grant-type", "grant_types", multiple=True)
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True)
@click.option("--backchannel-logout-uri", default=None)
@click.option("--third-party", "--consent", "third_party", is_flag=True,
              help="A third-party client: the person is asked to allow the scopes (remembered, "
                   "revocable on the account page). First-party clients skip consent.")
@click.option("--auth-method", default=None,
              help="Pin one: client_secret_basic, client_secret_post, private_key_jwt (with "
                   "--jwks), none (--public). Default: a secret sent either way (basic or post).")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--id-token-alg", default="RS256", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
@with_appcontext
def client_create_command(name, redirect_uris, public, tenant_slug, shared, shared_with,
                          grant_types, logout_uris, backchannel_logout_uri, third_party,
                          auth_method, jwks_file, id_token_alg, as_json) -> None:
    from idp.services.clients import ClientError, create_client, share_with
    from idp.services.tenants import get_by_slug

    if sum(map(bool, (tenant_slug, shared, shared_with))) > 1:
        _fail("choose one of --tenant (owned), --shared (every tenant) or --shared-with")
    tenant = None
    if tenant_slug:
        tenant = get_by_slug(tenant_slug)
        if tenant is None:
            _fail(f"no tenant {tenant_slug!r}")
    listed = []
    for slug in (shared_with or "").split(","):
        if slug.strip():
            listed.append(get_by_slug(slug.strip()) or _fail(f"no tenant {slug.strip()!r}"))
    if shared_with is not None and not listed:
        _fail("--shared-with needs at least one tenant slug")
    jwks = json.loads(Path(jwks_file).read_text()) if jwks_file else None
    try:
        registered = create_client(
            name, list(redirect_uris), public=public, tenant=tenant,
            grant_types=list(grant_types) or None, post_logout_redirect_uris=list(logout_uris),
            backchannel_logout_uri=backchannel_logout_uri, third_party=third_party,
            auth_method=auth_method, jwks=jwks, id_token_alg=id_token_alg)
    except ClientError as exc:
        _fail(str(exc))
    if listed:
        share_with(registered.client, listed)
    db.session.commit()
    creds = {"client_id": registered.client.client_id, "client_secret": registered.client_secret}
    click.echo(json.dumps(creds) if as_json else
               f"client_id: {creds['client_id']}\nclient_secret: {creds['client_secret']}")


terms_group = AppGroup("terms", help="Terms and conditions documents.")
idp_group.add_command(terms_group)


def _read_text(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {path}: {exc}")


@terms_group.command("publish")
@click.option("--tenant", "tenant_slug", default=None,
              help="The tenant whose document this is, and who requires it.")
@click.option("--platform", is_flag=True,
              help="A platform-wide document (no tenant owns it): required by --tenant or "
                   "--client when given, else by every sign-in.")
@click.option("--document", "name", required=True, help="Document name, e.g. partner-terms.")
@click.option("--version", required=True, help="Version label, e.g. 2026-12 or 3.")
@click.option("--en-file", default=None, help="English text (Markdown).")
@click.option("--fr-file", default=None, help="French text (Markdown).")
@click.option("--en-url", default=None, help="English text at an https:// address instead.")
@click.option("--fr-url", default=None, help="French text at an https:// address instead.")
@click.option("--client", "client_id", default=None,
              help="Required by this client (instead of the whole tenant).")
@with_appcontext
def terms_publish_command(tenant_slug, platform, name, version, en_file, fr_file, en_url,
                          fr_url, client_id) -> None:
    """Publish a version of a terms document and make the document required: people
    accept its latest version at their next sign-in."""
    from idp.models import Client
    from idp.services.tenants import get_by_slug
    from idp.services.terms import TermsError, Text, publish

    tenant = None
    if tenant_slug:
        tenant = get_by_slug(tenant_slug)
        if tenant is None:
            _fail(f"no tenant {tenant_slug!r}")
    client = None
    if client_id:
        client = db.session.query(Client).filter_by(client_id=client_id).first()
        if client is None:
            _fail(f"no client {client_id!r}")
    texts = {"en": Text(_read_text(en_file), en_url), "fr": Text(_read_text(fr_file), fr_url)}
    try:
        published = publish(name, version, texts, tenant=tenant, platform=platform,
                            client=client)
    except TermsError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(json.dumps({"document": name, "version": published.version,
                           "id": published.id,
                           "owner": "platform" if platform else tenant.slug}))


@terms_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def terms_list_command(as_json: bool) -> None:
    """Every terms document: owner, latest version, who requires it, acceptances."""
    from idp.services.terms import listing

    rows = listing()
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no terms documents")
        return
    click.echo(f"{'DOCUMENT':24} {'OWNER':16} {'LATEST':12} {'ACCEPTED':>8}  REQUIRED BY")
    for row in rows:
        click.echo(f"{row['document']:24} {row['owner']:16} {row['latest'] or '-':12} "
                   f"{row['accepted_latest']:>8}  {', '.join(row['required_by'])}")


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
