"""The TERMS step of an authorization (flows/authorization.py): the latest required
version of each terms document, one page each, Accept or Decline.

The page posts the version id it showed; services/terms.py accepts only a version
this person must accept now for this tenant and client, so another tenant's id, an
older version or a replayed POST is refused. Declining ends the authorization with
``access_denied``; when the person signed in during this very authorization, that
sign-in ends too (nothing stays signed in for someone who refused the terms); an
earlier single sign-on session stays as it was.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, render_template, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from idp.extensions import db
from idp.flows import base as flows
from idp.flows.authorization import State
from idp.flows.signin_views import _authorization_flow, _client_of, _continue
from idp.oauth.authorize import deliver_error, error_page
from idp.services import markdown, terms
from idp.services.logout import end_session

bp = Blueprint("terms", __name__)


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _page(flow, client, pending: list, error: str | None = None, status: int = 200):
    version = pending[0]
    text = terms.shown(version, str(get_locale() or "en"))
    return render_template(
        "flows/terms.html", flow=flow, client=client, version=version, text=text,
        # Rendered and sanitised at publish time; sanitised again here (microseconds), so a
        # row written any other way cannot bring a script either.
        html=Markup(markdown.sanitise(text.html)) if text.html else None,  # noqa: S704
        after=len(pending) - 1, error=error), status


def _not_waiting():
    """A replayed or late answer: no terms of this flow wait for one."""
    return error_page(_("These terms are not waiting for an answer. Go back to the "
                        "application and start again."), 400)


@bp.route("/terms", methods=["GET", "POST"])
def step():
    flow = _authorization_flow()
    client = _client_of(flow)
    if g.user is None or client is None:
        return _continue(flow)  # signed out meanwhile, or a client gone: the plan decides
    if flow.state != State.TERMS.value:
        if request.method == "POST":  # this step is not asked (any more)
            return _not_waiting()
        return _continue(flow)
    tenant_id = flow.data.get("tenant_id")
    pending = terms.pending_terms(g.user, tenant_id, client)
    if request.method == "GET":
        return _page(flow, client, pending) if pending else _continue(flow)
    decision = request.form.get("decision")
    if decision == "decline":
        flows.finish(flow)
        if flow.data.get("login_done"):
            end_session(session, g.user, request.remote_addr)
        return deliver_error(flow.params, flow.data["redirect_uri"], "access_denied",
                             "The user declined the terms.")
    if not pending:  # answered meanwhile (another tab): nothing to accept here
        return _not_waiting()
    if decision != "accept":
        return _page(flow, client, pending, _("Choose whether to accept the terms."), 400)
    try:
        terms.accept(g.user, request.form.get("version"), tenant_id=tenant_id, client=client,
                     ip=request.remote_addr, user_agent=request.user_agent.string)
    except terms.NotPending:
        db.session.rollback()
        pending = terms.pending_terms(g.user, tenant_id, client)
        if not pending:
            return _not_waiting()
        return _page(flow, client, pending, _("These terms have changed or were already "
                                              "answered. Read the terms below."), 400)
    db.session.commit()
    return _continue(flow)
