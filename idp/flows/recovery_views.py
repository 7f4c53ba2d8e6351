"""Forgot password (seeds 002, 004): ask for a link, then choose a new password.

``/password/forgot`` shows the same page and message whether or not the
address has an account (also for disabled, unverified or locked ones).
``/password/reset?token=...`` sets the new password through the shared form
(flows/password_form.py), then sends the person to sign in: no automatic
login, every other session and token is revoked (services/recovery.py).
Per-IP limits on both POSTs: flows/throttling.py.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _

from idp.flows import password_form
from idp.services import accounts, email_address, recovery

bp = Blueprint("recovery", __name__)

MAX_EMAIL_FIELD = 320


@bp.after_request
def _no_store(response):
    # The reset page carries its token in the URL: never cached (Referrer-Policy is no-referrer).
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot():
    if request.method == "GET":
        return render_template("flows/forgot.html", email="")
    email = request.form.get("email", "").strip()
    if len(email) > MAX_EMAIL_FIELD or not email_address.is_valid(email):
        return render_template("flows/forgot.html", email=email[:MAX_EMAIL_FIELD],
                               error=_("Enter a valid email address.")), 400
    recovery.request_reset(email, ip=request.remote_addr)
    duration = format_timedelta(timedelta(seconds=current_app.config["IDP_RESET_TTL"]),
                                threshold=1.0)
    return render_template("flows/forgot_sent.html", duration=duration)


def _link_error(exc: recovery.ResetError):
    if exc.expired:
        message = _("This password reset link has expired. Links work for a limited time: "
                    "ask for a new one.")
    else:
        message = _("This password reset link is not valid or was already used. Only the "
                    "newest link you received works, and only once.")
    return render_template("flows/link_error.html", title=_("Reset your password"),
                           message=message, action_url=url_for("recovery.forgot"),
                           action=_("Send me a new link")), 400


@bp.route("/password/reset", methods=["GET", "POST"])
def reset():
    token = request.args.get("token", "")
    try:
        user = recovery.check_link(token)
    except recovery.ResetError as exc:
        return _link_error(exc)
    policy = accounts.password_policy_for(user)
    if request.method == "GET":
        return _page(token, user, policy)
    form = password_form.read(request.form)
    if form.problems:
        return _page(token, user, policy, form.problems), 400
    try:
        recovery.reset_password(token, form.password, ip=request.remote_addr)
    except accounts.WeakPassword as exc:
        return _page(token, user, policy, exc.problems), 400
    except recovery.ResetError as exc:
        return _link_error(exc)
    if session.get("uid") == user.id:
        session.clear()  # its row is already gone with every other session of the user
    return redirect(url_for("recovery.done"), code=303)


def _page(token: str, user, policy, problems=None):
    return render_template("flows/reset_password.html", token=token, email=user.email,
                           pw=password_form.context(policy, user.email, problems))


@bp.route("/password/reset/done")
def done():
    return render_template("flows/password_saved.html", title=_("Password changed"),
                           message=_("Your password was changed and you were signed out "
                                     "everywhere. Sign in with your new password."))
