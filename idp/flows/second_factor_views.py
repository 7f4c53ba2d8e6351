"""The second-factor page's other ways: "send the code by email instead", "use a recovery
code", "use your authenticator app" (``signin.choose_factor``), and "no access to the
app?" (``signin.request_factor_reset``). Thin views over flows/signin.py."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from idp.flows import signin
from idp.flows.signin_views import (
    _authorization_of,
    _client_of,
    _code_error,
    _code_page,
    _signin_flow,
)

bp = Blueprint("second_factor", __name__)


@bp.route("/login/code/choose", methods=["POST"])
def choose():
    attempt = _signin_flow()
    outcome = signin.choose_factor(attempt, request.form.get("factor", "")[:64],
                                   request.remote_addr)
    if outcome.state is None:
        return redirect(url_for("flows.login"), code=303)
    if outcome.error:
        status = 429 if outcome.error == "throttled" else 400
        return _code_page(attempt, outcome.error, status)
    return redirect(url_for("flows.login_code", signin=attempt.id), code=303)


def _no_access_page(attempt, requested: bool = False, error: str | None = None,
                    status: int = 200):
    authorization = _authorization_of(attempt)
    return render_template("flows/login_no_access.html", attempt=attempt,
                           client=_client_of(authorization), requested=requested,
                           alternatives=signin.alternatives(attempt), error=error), status


@bp.route("/login/code/no-access", methods=["GET", "POST"])
def no_access():
    attempt = _signin_flow()
    if request.method == "GET":
        return _no_access_page(attempt)
    outcome = signin.request_factor_reset(attempt, request.remote_addr)
    if outcome.state is None:
        return redirect(url_for("flows.login"), code=303)
    if outcome.error:
        return _no_access_page(attempt, True, _code_error(None, outcome.error), 429)
    return _no_access_page(attempt, requested=True)
