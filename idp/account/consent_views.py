"""The account's consents: what the person allowed third-party clients, and revoking it.

Revoking forgets the consent (the client asks again next time) and revokes that
client's tokens for this person, refresh tokens included (services/consents.py). It
is a POST with the CSRF token, after a confirmation page; another person's consent
id is a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from idp.account.views import _login_required
from idp.extensions import db
from idp.services import consents

bp = Blueprint("consents", __name__, url_prefix="/account/consents")


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.route("", methods=["GET"])
def index():
    if (response := _login_required()) is not None:
        return response
    rows = consents.of_user(g.user.id)
    granted = {consent.id: datetime.fromtimestamp(consent.granted_at, UTC) for consent, _ in rows}
    return render_template("account/consents.html", consents=rows, granted=granted,
                           revoked=request.args.get("revoked") == "1")


@bp.route("/<consent_id>/revoke", methods=["GET", "POST"])
def revoke(consent_id: str):
    if (response := _login_required()) is not None:
        return response
    found = consents.get_for_user(g.user.id, consent_id)
    if found is None:
        abort(404)
    consent, client = found
    if request.method == "GET":
        return render_template("account/consent_revoke.html", consent=consent, client=client)
    consents.revoke(consent, ip=request.remote_addr)
    db.session.commit()
    return redirect(url_for("consents.index", revoked="1"), code=303)
