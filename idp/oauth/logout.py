"""RP-initiated logout 1.0 (``end_session_endpoint``).

``post_logout_redirect_uri`` must match one registered for the client named by
``id_token_hint`` (or ``client_id``) exactly; otherwise an error page, never a
redirect. Without a valid hint for the signed-in user, the person confirms.
"""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from idp.flows import base as flows
from idp.flows.logout import FLOW_TYPE, State
from idp.oauth.authorize import error_page
from idp.oauth.id_token_hint import InvalidHint, decode_id_token_hint
from idp.oauth.server import authorization_server
from idp.services.logout import end_session

bp = Blueprint("logout", __name__)


def finish_logout(redirect_uri: str | None, state: str | None):
    if redirect_uri:
        params = [("state", state)] if state else []
        return redirect(add_params_to_uri(redirect_uri, params), code=303)
    return render_template("flows/logged_out.html")


@bp.route("/oauth/logout", methods=["GET", "POST"])
def end_session_endpoint():
    values = request.values
    if any(len(values.get(k) or "") > 8192 for k in values):
        return error_page(_("The request is too large."))
    hint_claims = None
    if values.get("id_token_hint"):
        try:
            hint_claims = decode_id_token_hint(values["id_token_hint"])
        except InvalidHint:
            return error_page(_("The sign-out request is not valid."))
    client_id = values.get("client_id")
    if hint_claims is not None:
        aud = hint_claims.get("aud")
        hinted = aud if isinstance(aud, str) else (aud[0] if aud else None)
        if client_id and client_id != hinted:
            return error_page(_("The sign-out request is not valid."))
        client_id = hinted
    redirect_uri = values.get("post_logout_redirect_uri")
    if redirect_uri:
        client = authorization_server().query_client(client_id) if client_id else None
        if client is None or redirect_uri not in client.post_logout_redirect_uris:
            return error_page(_("The sign-out request is not valid."))
    if values.get("ui_locales"):
        session["ui_locales"] = values["ui_locales"][:100]
    state = values.get("state")
    user = g.user
    if user is None:
        return finish_logout(redirect_uri, state)
    if hint_claims is not None and hint_claims.get("sub") == user.sub:
        end_session(session, user, request.remote_addr)
        return finish_logout(redirect_uri, state)
    flow = flows.start(FLOW_TYPE, State.CONFIRM,
                       {"redirect_uri": redirect_uri, "state": state})
    return redirect(url_for("flows.logout", flow=flow.id), code=303)
