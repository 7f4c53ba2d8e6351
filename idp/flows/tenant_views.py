"""Pages of the tenant step: the picker, **Switch account**, the account-in-use notice.

The picker page is one template for the pending sign-in (flows/signin_views.py
``login_tenant``), the signed-in authorization (``select_tenant``) and Switch account
here. The rule lives in flows/tenant_pick.py; these views stay thin.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from idp.extensions import db
from idp.factors import assurance
from idp.flows import base as flows
from idp.flows import signin, tenant_pick
from idp.flows.authorization import FLOW_TYPE as AUTHORIZATION
from idp.models import Tenant
from idp.security import allow_image_origins
from idp.services import memberships
from idp.services.branding import branding
from idp.services.sessions import completed_factors

bp = Blueprint("tenants", __name__)

ROLE_LABELS = {"super_admin": lazy_gettext("Super-administrator"),
               "admin": lazy_gettext("Administrator"), "member": lazy_gettext("Member")}
MAX_NEXT = 512


def choice_error() -> str:
    return _("Choose one of the listed organisations.")


def picker(action: str, candidates: list, email: str, error: str | None = None,
           status: int = 200, pending: bool = False):
    """The picker page: name, logo (when the tenant has one) and role of each company."""
    options, origins = [], set()
    for membership in candidates:
        brand = branding(membership.tenant)
        options.append({"id": membership.tenant_id, "name": membership.tenant.name,
                        "logo_url": brand.logo_url,
                        "role": ROLE_LABELS.get(membership.role, membership.role)})
        if brand.logo_origin:
            origins.add(brand.logo_origin)
    page = render_template("flows/select_tenant.html", action=action, options=options,
                           email=email, pending=pending, error=error)
    # Logos on the tenants' own sites: those origins only, for images.
    return allow_image_origins(make_response(page, status), origins)


def _authorization(flow_id: str | None):
    try:
        return flows.load(flow_id, AUTHORIZATION) if flow_id else None
    except flows.FlowError:
        return None


def _safe_next(value: str | None) -> str:
    """A local path to go back to (never another site). Spaces and control characters are
    refused: browsers drop tabs and newlines, so ``/<tab>/evil`` would be ``//evil``."""
    value = value or ""
    if value.startswith("/") and not value.startswith(("//", "/\\")) and len(value) <= MAX_NEXT \
            and all(" " < c < "\x7f" for c in value):
        return value
    return url_for("account.profile")


@bp.route("/switch-account/again", methods=["POST"])
def switch_in_flow():
    """Switch account during an authorization: that flow shows the picker again (the plan
    steps up when the company picked asks for more than the session has)."""
    flow = _authorization(request.form.get("flow"))
    if g.user is None or flow is None:
        return redirect(url_for("tenants.switch_account"), code=303)
    flow.data.pop("tenant_id", None)
    flow.data["reselect"] = True
    flows.save(flow)
    return redirect(url_for("authorize.resume", flow=flow.id), code=303)


@bp.route("/switch-account", methods=["GET", "POST"])
def switch_account():
    """Show the picker again without the password: the company this session works for."""
    if g.user is None:
        return redirect(url_for("flows.login"), code=303)
    candidates = memberships.served_memberships(g.user, None)
    action = url_for("tenants.switch_account")
    if request.method == "GET":
        return picker(action, candidates, g.user.email)
    try:
        membership = tenant_pick.chosen(candidates, request.form.get("tenant"))
    except tenant_pick.InvalidChoice:
        return picker(action, candidates, g.user.email, choice_error(), 400)
    needed = assurance.POLICY_LEVELS[assurance.mfa_policy(membership.tenant)]
    done = completed_factors(session)
    if assurance.level_of(done) < needed:
        # Stricter than this session: the sign-in asks for the missing factor only.
        attempt = signin.start(None, membership.tenant_id, g.user, done)
        outcome = signin.advance(attempt, g.user, request.remote_addr)
        if outcome.state in (signin.State.SECOND_FACTOR, signin.State.ENROL):
            return redirect(url_for(signin.step_endpoint(attempt), signin=attempt.id),
                            code=303)
        if outcome.state is signin.State.DONE:
            signin.complete(attempt, request.remote_addr)
            return redirect(url_for("account.profile"), code=303)
        return picker(action, candidates, g.user.email, _(
            "This organisation requires a sign-in method that is not available yet. "
            "Contact your administrator."), 400)
    tenant_pick.use(session, membership.tenant_id)
    return redirect(url_for("account.profile"), code=303)


@bp.route("/account/notice/close", methods=["POST"])
def close_notice():
    """Hide the account-in-use notice until the next sign-in (which clears the session)."""
    if g.user is not None:
        session[tenant_pick.NOTICE_CLOSED] = True
    return redirect(_safe_next(request.form.get("next")), code=303)


@bp.app_context_processor
def _account_notice() -> dict:
    def account_notice() -> dict | None:
        """Who and which company this session is for (None: nobody, or closed)."""
        user = g.get("user")
        if user is None or session.get(tenant_pick.NOTICE_CLOSED):
            return None
        tenant_id = tenant_pick.in_use(session)
        tenant = db.session.get(Tenant, tenant_id) if tenant_id is not None else None
        return {"email": user.email, "company": tenant.name if tenant is not None else None,
                "switch": len(memberships.served_memberships(user, None)) > 1,
                "next": request.full_path.rstrip("?")}

    return {"account_notice": account_notice}
