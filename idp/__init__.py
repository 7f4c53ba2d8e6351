"""The identity provider: one app factory, subsystems bound with init_app."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request, session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from werkzeug.exceptions import HTTPException

from idp.config import RESOURCE_DIR, load_config
from idp.extensions import babel, csrf, db, migrate
from idp.oauth.fast import API_PREFIXES


def select_locale() -> str:
    """The page's language: services/locale.py's precedence (saved, switcher, ui_locales,
    Accept-Language)."""
    from flask import current_app

    from idp.services.locale import choose

    user = g.get("user")
    return choose(current_app.config["IDP_LOCALES"],
                  saved=user.locale if user is not None else None,
                  chosen=session.get("locale"), ui_locales=session.get("ui_locales"),
                  accept_languages=request.accept_languages,
                  default=current_app.config["BABEL_DEFAULT_LOCALE"])


SQLITE_MMAP_BYTES = 1 << 30  # address space, not memory: pages come from the OS cache


def _sqlite_pragmas(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Reads through a memory map (the OS page cache, shared by every connection and
        # worker) instead of a read() per page into SQLite's 2 MB per-connection cache:
        # with a million stored tokens the indexes outgrow that cache.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()


def _load_user() -> None:
    from idp.models import User

    # Per-request values must not survive in `g` when a caller (the test suite)
    # runs several requests inside one outer app context.
    for cached in ("_flask_babel", "csp_nonce"):
        g.pop(cached, None)
    g.user = None
    uid = session.get("uid") if session else None
    if uid is None:
        return
    user = db.session.get(User, uid)
    if user is None or not user.active:
        session.clear()  # a disabled user's session is dead
        return
    g.user = user


def _error_handlers(app: Flask) -> None:
    def wants_json() -> bool:
        return request.path.startswith(API_PREFIXES)

    @app.errorhandler(CSRFError)
    def _csrf(error):
        message = _("Your session has expired or the form was sent twice. Please try again.")
        return render_template("flows/error.html", message=message, error="csrf"), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if wants_json():
            return jsonify({"error": "invalid_request" if error.code < 500 else "server_error",
                            "error_description": error.name}), error.code
        messages = {
            404: _("This page does not exist."),
            405: _("This address does not accept this kind of request."),
            413: _("The request is too large."),
            503: _("This service is not ready yet. Please try again in a few minutes."),
        }
        message = messages.get(error.code, _("The request could not be processed."))
        return render_template("flows/error.html", message=message), error.code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        db.session.rollback()
        if wants_json():
            return jsonify({"error": "server_error"}), 500
        return render_template("flows/error.html",
                               message=_("Something went wrong on our side. Please try again.")), 500


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(RESOURCE_DIR / "templates"),
                static_folder=str(Path(__file__).parent / "static"))
    app.config.update(load_config())
    if config:
        app.config.update(config)
    if not app.config["IDP_HTTPS"]:
        # Authlib refuses http URLs unless told; the issuer says this deployment is http.
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    app.config["SESSION_COOKIE_SECURE"] = app.config["IDP_HTTPS"]

    from idp import (
        mail,
        models,  # noqa: F401 - register the models
        observability,
        security,
    )
    from idp.oauth import server as oauth_server
    from idp.oauth.keys import KeyStore
    from idp.services.sessions import DatabaseSessionInterface

    db.init_app(app)
    _sqlite_pragmas(app)
    migrate.init_app(app, db, directory=str(RESOURCE_DIR / "migrations"))
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    app.session_interface = DatabaseSessionInterface()
    app.extensions["idp_keys"] = KeyStore(app.config["IDP_KEYS_DIR"])
    oauth_server.init_app(app)
    security.init_app(app)
    observability.init_app(app)
    mail.init_app(app)

    from idp.flows.signin_views import bp as flows_bp
    from idp.oauth.authorize import bp as authorize_bp
    from idp.oauth.endpoints import bp as oauth_bp
    from idp.oauth.logout import bp as logout_bp

    # Machine endpoints authenticate clients, not browsers: no CSRF tokens there.
    for blueprint in (oauth_bp, authorize_bp, logout_bp):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    app.register_blueprint(flows_bp)

    from idp.account import consent_views
    from idp.flows import terms_views

    app.register_blueprint(terms_views.bp)  # the TERMS step of an authorization
    app.register_blueprint(consent_views.bp)  # /account/consents
    from idp.flows import tenant_views

    app.register_blueprint(tenant_views.bp)

    from idp.account import language_views
    from idp.flows import branding_views, invitation_views, recovery_views, throttling

    branding_views.init_app(app)  # the tenant's logo, colours and name on every page
    app.register_blueprint(language_views.bp)
    csrf.exempt(language_views.switch)  # checked in the view: a token, or Sec-Fetch-Site

    app.register_blueprint(invitation_views.bp)
    app.register_blueprint(recovery_views.bp)

    from idp.account import security_views
    from idp.account.views import bp as account_bp
    from idp.flows import second_factor_views

    app.register_blueprint(second_factor_views.bp)
    app.register_blueprint(security_views.bp)
    from idp.flows import company_signup_views, registration_views

    for blueprint in (registration_views.bp, company_signup_views.bp, account_bp):
        app.register_blueprint(blueprint)
    from idp.account.passkey_views import bp as passkeys_bp

    app.register_blueprint(passkeys_bp)
    registration_views.init_app(app)  # link lifetimes, per-IP limits of the sign-up POSTs
    throttling.init_app(app)  # per-IP limits on the password and mail POSTs

    from idp.services import (
        deferred,
        recovery,  # noqa: F401 - registers its deferred handlers
    )

    deferred.init_app(app)  # work run after the response (lock and reset emails)

    from flask_babel import get_locale

    app.jinja_env.globals.update(
        current_locale=lambda: str(get_locale() or "en"),
        brand_name=lambda: app.config["IDP_BRAND_NAME"],
        has_endpoint=lambda name: name in app.view_functions,
    )
    app.before_request(_load_user)
    _error_handlers(app)

    from idp.cli import register_commands

    register_commands(app)

    from idp.services import state_cache

    state_cache.init_app(app)  # PostgreSQL: token state kept until a trigger says it changed

    from idp.oauth import fast

    fast.init_app(app)  # discovery and JWKS before Flask (outermost: wraps ProxyFix too)
    return app
