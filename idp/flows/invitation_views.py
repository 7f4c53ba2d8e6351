"""Complete Registration (seeds 000, 001): the welcome email's link sets the first password.

``/invitation?token=...`` shows the tenant's password rules (checked live by
static/password.js, again by the server), activates the account and sends the
person to sign in; it never signs them in. A used, superseded or expired link
gets one clear page. Per-IP limit on the POST: flows/throttling.py.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.flows import password_form
from idp.services import accounts, invitations

bp = Blueprint("invitation", __name__)


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _link_error(exc: invitations.InvitationError):
    if exc.expired:
        message = _("This invitation link has expired. Ask your administrator to send a new "
                    "one, or ask for a new link below.")
    else:
        message = _("This invitation link is not valid or was already used. If you already "
                    "chose your password, sign in.")
    return render_template("flows/link_error.html", title=_("Complete your registration"),
                           message=message,
                           action_url=url_for("recovery.forgot" if exc.expired
                                              else "flows.login"),
                           action=_("Send me a new link") if exc.expired else _("Sign in")), 400


@bp.route("/invitation", methods=["GET", "POST"])
def complete():
    token = request.args.get("token", "")
    try:
        user, tenant = invitations.check_link(token)
    except invitations.InvitationError as exc:
        return _link_error(exc)
    policy = invitations.policy_for_link(user, tenant)
    if request.method == "GET":
        return _page(token, user, tenant, policy)
    form = password_form.read(request.form)
    if form.problems:
        return _page(token, user, tenant, policy, form.problems), 400
    try:
        invitations.complete_invitation(token, form.password, ip=request.remote_addr)
    except accounts.WeakPassword as exc:
        return _page(token, user, tenant, policy, exc.problems), 400
    except invitations.InvitationError as exc:
        return _link_error(exc)
    return redirect(url_for("invitation.done"), code=303)


def _page(token: str, user, tenant, policy, problems=None):
    return render_template("flows/complete_registration.html", token=token, email=user.email,
                           tenant=tenant, pw=password_form.context(policy, user.email, problems))


@bp.route("/invitation/done")
def done():
    return render_template("flows/password_saved.html", title=_("Your account is ready"),
                           message=_("Your password is saved. Sign in with your email address "
                                     "and your new password."))
