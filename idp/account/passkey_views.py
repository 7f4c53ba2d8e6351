"""The account's passkeys page: register, list, rename and remove passkeys.

Adding or removing one needs a recent sign-in with a second factor
(``recent_strong_login``); otherwise the page asks for the password and then
the second factor again (a fresh sign-in, ``signin.start_reauthentication``) and comes
back here. Each addition and removal is audited and emailed to the person. The
registration's challenge waits in the session (``PENDING``) until the browser
answers; the ceremony itself is the webauthn factor's (factors/webauthn.py).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_datetime
from flask_babel import gettext as _

from idp.account.security_views import codes_page
from idp.account.views import recent_strong_login, step_up
from idp.extensions import db
from idp.factors.base import Accepted, Rejected
from idp.factors.registry import get_factor
from idp.flows.signin_views import passkey_error
from idp.services import passkeys, recovery_codes

bp = Blueprint("account_passkeys", __name__, url_prefix="/account/passkeys")
PENDING = "passkey_registration"
NOTICES = {
    "added": lambda: _("Your passkey was added."),
    "renamed": lambda: _("Your passkey was renamed."),
    "removed": lambda: _("Your passkey was removed."),
}
ERRORS = {
    "step_up": lambda: _("For your security, confirm it is you before changing your passkeys."),
    "password": lambda: _("This password is not correct."),
    "name_missing": lambda: _("Enter a name for this passkey."),
    "not_found": lambda: _("This passkey no longer exists."),
    "no_challenge": lambda: _("This request expired. Try again."),
    "expired": lambda: _("This request expired. Try again."),
    "too_many": lambda: _("You have too many passkeys. Remove one first."),
}


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _when(epoch: int | None) -> str | None:
    from datetime import UTC, datetime

    return format_datetime(datetime.fromtimestamp(epoch, UTC), "medium") if epoch else None


def _page(error: str | None = None, status: int = 200):
    message = ERRORS[error]() if error in ERRORS else passkey_error(error)
    return render_template(
        "account/passkeys.html", user=g.user, passkeys=passkeys.credentials_of(g.user),
        when=_when, can_change=recent_strong_login(),
        notice=NOTICES[request.args["saved"]]() if request.args.get("saved") in NOTICES else None,
        error=message), status


def _done(saved: str):
    return redirect(url_for("account_passkeys.page", saved=saved), code=303)


@bp.before_request
def _signed_in_only():
    if g.user is None:
        return redirect(url_for("flows.login"), code=303)
    return None


@bp.route("", methods=["GET"])
def page():
    return _page()


@bp.route("/confirm", methods=["POST"])
def confirm():
    """Step-up: the password again, then the second factor, then back to this page."""
    return step_up("account_passkeys.page") or _page("password", 400)


@bp.route("/options", methods=["POST"])
def options():
    """JSON for navigator.credentials.create(), with a challenge kept in the session."""
    if not recent_strong_login():
        return jsonify({"error": "step_up"}), 403
    state: dict = {}
    page_data = get_factor("webauthn").enrol_start(g.user, state)
    session[PENDING] = state
    return jsonify({"options": page_data["options"]})


@bp.route("", methods=["POST"])
def add():
    if not recent_strong_login():
        return _page("step_up", 403)
    state = dict(session.pop(PENDING, None) or {})
    result = get_factor("webauthn").enrol_confirm(
        g.user, {"credential": request.form.get("credential", "")[:16384],
                 "name": request.form.get("name"), "ip": request.remote_addr}, state)
    # The first strong factor brings the recovery codes, shown once (as with the app).
    codes = recovery_codes.issue_if_first_strong_factor(g.user) \
        if isinstance(result, Accepted) else None
    db.session.commit()  # the passkey and its email, or the refusal's audit entry
    if codes:
        return codes_page(codes, back=url_for("account_passkeys.page", saved="added"))
    if isinstance(result, Accepted):
        return _done("added")
    return _page(result.reason if isinstance(result, Rejected) else "invalid", 400)


@bp.route("/<int:passkey_id>/rename", methods=["POST"])
def rename(passkey_id: int):
    try:
        passkeys.rename(g.user, passkey_id, request.form.get("name"))
    except passkeys.PasskeyError as refused:
        return _page(refused.reason, 404 if refused.reason == "not_found" else 400)
    db.session.commit()
    return _done("renamed")


@bp.route("/<int:passkey_id>/remove", methods=["POST"])
def remove(passkey_id: int):
    if not recent_strong_login():
        return _page("step_up", 403)
    try:
        name = passkeys.remove(g.user, passkey_id, ip=request.remote_addr)
    except passkeys.PasskeyError as refused:
        return _page(refused.reason, 404)
    passkeys.notify(g.user, "passkey_removed", name)
    recovery_codes.drop_if_no_strong_factor(g.user)  # their backup goes with the last one
    db.session.commit()
    return _done("removed")
