"""The account pages: profile, display language, and changing the email address.

Changing the address needs a recent login (step-up): the session's last
authentication (``auth_time``, or a password typed again on this page,
``reauth_at``) must be under IDP_STEP_UP_MAX_AGE seconds old (10 minutes);
otherwise the page asks for the current password too. The change itself waits
for the new address to confirm (services/email_change.py).
"""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from idp.account.language_views import apply_choice
from idp.extensions import db
from idp.flows import base as flows
from idp.flows import signin
from idp.flows.signup_messages import field_errors, link_message
from idp.services import accounts, email_address, email_change
from idp.services.locale import LANGUAGE_NAMES

bp = Blueprint("account", __name__, url_prefix="/account")
LOCALES = LANGUAGE_NAMES


@bp.after_request
def no_store(response: Response) -> Response:
    """Account pages are personal: never cached (the security page uses it too)."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _login_required():
    if g.user is None:
        return redirect(url_for("flows.login"), code=303)
    return None


def recent_login(now: int | None = None) -> bool:
    """Did this session authenticate (or re-enter the password) within the step-up window?"""
    now = now or int(time.time())
    window = current_app.config["IDP_STEP_UP_MAX_AGE"]
    last = max(int(session.get("auth_time") or 0), int(session.get("reauth_at") or 0))
    return now - last <= window


def recent_strong_login(now: int | None = None) -> bool:
    """Did this session sign in within the step-up window with a second factor (or a
    verified passkey)? What changing or removing a factor needs; a password typed
    again (``reauth_at``), or a trusted browser, is not enough."""
    from idp.factors import assurance
    from idp.services.sessions import completed_factors

    now = now or int(time.time())
    fresh = now - int(session.get("auth_time") or 0) <= current_app.config["IDP_STEP_UP_MAX_AGE"]
    # A trusted browser's remembered factors are not a fresh proof.
    proved = [r for r in completed_factors(session) if not r.get("trusted_browser")]
    return fresh and assurance.level_of(proved) >= 2


def step_up(return_to: str) -> Response | None:
    """"Confirm it is you" before a factor changes: the password typed on the page starts a
    fresh sign-in (``signin.start_reauthentication``) whose next step, the second factor,
    comes back to ``return_to``; None when the password is wrong (the page says so)."""
    attempt = signin.start_reauthentication(return_to)
    outcome = signin.submit_password(attempt, g.user.email,
                                     request.form.get("password", "")[:1024],
                                     request.remote_addr)
    if outcome.state in (signin.State.SECOND_FACTOR, signin.State.ENROL):
        return redirect(url_for(signin.step_endpoint(attempt), signin=attempt.id), code=303)
    flows.finish(attempt)
    return None


@bp.route("", methods=["GET"])
def profile():
    if (response := _login_required()) is not None:
        return response
    memberships = accounts.memberships_for_client(g.user, None)
    return render_template("account/profile.html", user=g.user, memberships=memberships,
                           email=email_address.display(g.user.email), locales=LOCALES,
                           saved=request.args.get("saved") == "language")


@bp.route("/language", methods=["POST"])
def language():
    if (response := _login_required()) is not None:
        return response
    if not apply_choice(request.form.get("locale", "")):  # the switcher's handler
        return redirect(url_for("account.profile"), code=303)
    return redirect(url_for("account.profile", saved="language"), code=303)


def _change_page(new_email: str = "", errors: dict | None = None, status: int = 200):
    return render_template("account/change_email.html", new_email=new_email[:320],
                           errors=field_errors(errors or {}), step_up=not recent_login(),
                           email=email_address.display(g.user.email)), status


@bp.route("/email", methods=["GET", "POST"])
def change_email():
    if (response := _login_required()) is not None:
        return response
    if request.method == "GET":
        return _change_page()
    new_email = request.form.get("new_email", "")
    if not recent_login():
        try:
            user = accounts.authenticate(g.user.email, request.form.get("password", "")[:1024],
                                         ip=request.remote_addr)
        except accounts.InvalidCredentials:
            db.session.commit()  # a lock this failure set
            return _change_page(new_email, {"password": "wrong"}, 400)
        if user.id != g.user.id:
            return _change_page(new_email, {"password": "wrong"}, 400)
        db.session.commit()
        session["reauth_at"] = int(time.time())
    try:
        email_change.request_change(g.user, new_email, ip=request.remote_addr)
    except email_change.EmailChangeError as exc:
        return _change_page(new_email, exc.errors, 400)
    session["email_change_to"] = email_address.normalize(new_email)
    return redirect(url_for("account.email_sent"), code=303)


@bp.route("/email/sent")
def email_sent():
    if (response := _login_required()) is not None:
        return response
    pending = session.get("email_change_to")
    if not pending:
        return redirect(url_for("account.profile"), code=303)
    return render_template("account/email_sent.html", new_email=email_address.display(pending),
                           email=email_address.display(g.user.email))


def _link_error(exc: email_change.ChangeLinkError):
    if isinstance(exc, email_change.AddressTaken):
        message = link_message(False)
    else:
        message = link_message(exc.expired)
    return render_template("account/link_error.html", message=message), 400


@bp.route("/email/confirm", methods=["GET", "POST"])
def confirm_email():
    token = request.values.get("token", "")
    if request.method == "GET":
        try:
            row, _user = email_change.check_link(token)
        except email_change.ChangeLinkError as exc:
            return _link_error(exc)
        return render_template("account/confirm_email.html", token=token,
                               new_email=email_address.display(row.email))
    try:
        user = email_change.confirm_change(token, ip=request.remote_addr)
    except email_change.ChangeLinkError as exc:
        return _link_error(exc)
    if g.user is not None and g.user.id == user.id:
        session.pop("email_change_to", None)
    return render_template("account/email_changed.html", new_email=email_address.display(user.email),
                           signed_in=g.user is not None and g.user.id == user.id)
