"""The account's security page: the authenticator app, recovery codes, trusted browsers.

Every change here (setting up or removing the app, new recovery codes, revoking a
trusted browser) needs a *recent sign-in with a second factor*: the session's
``auth_time`` under IDP_STEP_UP_MAX_AGE seconds old and at least two distinct factors
among its completed ones (factors/assurance.py), a trusted browser's remembered factor
not counted. Otherwise the page asks the person to
confirm it is them: the password, then a second factor (``signin.start_reauthentication``),
and the sign-in comes back here. Each change emails the person (services/factor_settings.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    Blueprint,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_date
from flask_babel import gettext as _

from idp.account.views import no_store, recent_strong_login, step_up
from idp.extensions import db
from idp.factors.recovery_code import COUNT as RECOVERY_CODE_COUNT
from idp.factors.recovery_code import remaining
from idp.factors.registry import get_factor
from idp.factors.totp import credential_of
from idp.services import factor_settings, trusted_browsers

bp = Blueprint("security", __name__, url_prefix="/account/security")
ENROLMENT_KEY = "totp_enrolment"

ERRORS = {
    "wrong": lambda: _("This code is not correct. Type the code your authenticator app "
                       "shows now."),
    "expired": lambda: _("This setup took too long. Start again."),
    "attempts_capped": lambda: _("Too many attempts for this account. Please try again later."),
    "not_enrolled": lambda: _("There is nothing to remove."),
    "no_strong_factor": lambda: _("Set up an authenticator app first."),
    "unknown_factor": lambda: _("This way of signing in cannot be changed here."),
    "password": lambda: _("Incorrect password."),
}
NOTICES = {
    "totp_added": lambda: _("Your authenticator app is set up."),
    "totp_removed": lambda: _("Your authenticator app was removed."),
    "browser_revoked": lambda: _("This browser is no longer trusted."),
}


bp.after_request(no_store)


def _gate():
    """None when the person may change factors now; else where to send them."""
    if g.user is None:
        return redirect(url_for("flows.login"), code=303)
    if not recent_strong_login():
        return redirect(url_for("security.page", confirm=1), code=303)
    return None


def _date(epoch: int) -> str:
    return format_date(datetime.fromtimestamp(int(epoch), UTC), "long")


def _page(error: str | None = None, status: int = 200):
    user = g.user
    credential = credential_of(user)
    browsers = [{"id": b.id, "label": b.label, "until": _date(b.expires_at)}
                for b in trusted_browsers.list_for(user)]
    return render_template(
        "account/security.html", user=user, totp=credential,
        totp_since=_date(credential.created_at) if credential else None,
        recovery_left=remaining(user), recovery_total=RECOVERY_CODE_COUNT,
        browsers=browsers, confirm=not recent_strong_login(),
        asked_confirm=request.args.get("confirm") == "1",
        notice=NOTICES[request.args["saved"]]() if request.args.get("saved") in NOTICES
        else None,
        error=ERRORS[error]() if error else None), status


@bp.route("", methods=["GET"])
def page():
    if g.user is None:
        return redirect(url_for("flows.login"), code=303)
    return _page()


@bp.route("/confirm", methods=["POST"])
def confirm():
    """Confirm it is you: the password here, then the second factor's page."""
    if g.user is None:
        return redirect(url_for("flows.login"), code=303)
    return step_up("security.page") or _page("password", 400)


def codes_page(codes: list[str], back: str | None = None):
    """The recovery codes, shown once, with their download (also after a first passkey);
    ``back``: where "I saved my codes" leads (the security page by default)."""
    text = "\n".join([_("Recovery codes for %(email)s", email=g.user.email), "", *codes, ""])
    return render_template("account/security_codes.html", codes=codes, download=text,
                           back=back or url_for("security.page"))


@bp.route("/totp", methods=["POST"])
def totp_start():
    if (response := _gate()) is not None:
        return response
    state: dict = {}
    page = factor_settings.enrol_start(g.user, "totp", state)
    session[ENROLMENT_KEY] = state
    return render_template("account/security_totp.html", page=page)


@bp.route("/totp/confirm", methods=["POST"])
def totp_confirm():
    if (response := _gate()) is not None:
        return response
    state = dict(session.get(ENROLMENT_KEY) or {})
    try:
        codes = factor_settings.enrol_confirm(g.user, "totp", {"code": request.form.get(
            "code", "")[:64]}, state, ip=request.remote_addr)
    except factor_settings.FactorChangeError as failure:
        db.session.rollback()
        page = get_factor("totp").enrolment_page(g.user, state)
        if not page:
            session.pop(ENROLMENT_KEY, None)
            return _page("expired", 400)
        return render_template("account/security_totp.html", page=page,
                               error=ERRORS.get(failure.reason, ERRORS["wrong"])()), 400
    db.session.commit()
    session.pop(ENROLMENT_KEY, None)
    if codes:
        return codes_page(codes)
    return redirect(url_for("security.page", saved="totp_added"), code=303)


@bp.route("/totp/remove", methods=["POST"])
def totp_remove():
    if (response := _gate()) is not None:
        return response
    try:
        factor_settings.remove(g.user, "totp", ip=request.remote_addr)
    except factor_settings.FactorChangeError as failure:
        return _page(failure.reason, 400)
    db.session.commit()
    return redirect(url_for("security.page", saved="totp_removed"), code=303)


@bp.route("/recovery-codes", methods=["POST"])
def recovery_codes():
    if (response := _gate()) is not None:
        return response
    try:
        codes = factor_settings.regenerate_recovery_codes(g.user, ip=request.remote_addr)
    except factor_settings.FactorChangeError as failure:
        return _page(failure.reason, 400)
    db.session.commit()
    return codes_page(codes)


@bp.route("/browsers/<int:browser_id>/revoke", methods=["POST"])
def revoke_browser(browser_id: int):
    if (response := _gate()) is not None:
        return response
    if not trusted_browsers.revoke(g.user, browser_id):
        return _page("not_enrolled", 404)
    db.session.commit()
    return redirect(url_for("security.page", saved="browser_revoked"), code=303)
