"""Company sign-up pages (seed 004): email, then company details, then the person."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from sqlalchemy import select

from idp.extensions import db
from idp.factors.assurance import completed
from idp.factors.base import Accepted
from idp.factors.registry import get_factor
from idp.flows import base as flows
from idp.flows import company_signup as steps
from idp.flows import password_form
from idp.flows.signup_messages import field_errors, link_message
from idp.models import Membership, Tenant
from idp.services import company_identity, company_signup, email_address
from idp.services.sessions import sign_in

bp = Blueprint("company_signup", __name__, url_prefix="/signup")


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _locale() -> str:
    return str(get_locale() or "en")


# ----------------------------------------------------------------------------- step 1


@bp.route("", methods=["GET", "POST"])
def start():
    if request.method == "GET":
        return render_template("flows/company_signup/start.html", email="", confirm_email="",
                               errors={})
    email = request.form.get("email", "")
    confirm = request.form.get("confirm_email", "")
    try:
        company_signup.request_signup(email, confirm, locale=_locale(), ip=request.remote_addr)
    except company_signup.SignupError as exc:
        return render_template("flows/company_signup/start.html", email=email[:320],
                               confirm_email=confirm[:320],
                               errors=field_errors(exc.errors)), 400
    flow = steps.start_request(email_address.normalize(email))
    return redirect(url_for("company_signup.sent", flow=flow.id), code=303)


def _request_flow():
    try:
        return flows.load(request.values.get("flow"), steps.REQUEST_FLOW)
    except flows.FlowError:
        return None


@bp.route("/sent")
def sent():
    flow = _request_flow()
    if flow is None:
        return redirect(url_for("company_signup.start"), code=303)
    return render_template("flows/company_signup/sent.html", flow=flow,
                           email=email_address.display(flow.data.get("email", "")),
                           resent=bool(flow.data.get("resent")))


@bp.route("/resend", methods=["POST"])
def resend():
    flow = _request_flow()
    if flow is None:
        return redirect(url_for("company_signup.start"), code=303)
    steps.resend(flow, _locale())
    return redirect(url_for("company_signup.sent", flow=flow.id), code=303)


# ----------------------------------------------------------------------------- the link


def _link_error(expired: bool):
    return render_template("flows/company_signup/link_error.html",
                           message=link_message(expired), expired=expired), 400


def _flow_gone():
    """The flow ended (finished, expired or never existed in this browser)."""
    return render_template("flows/company_signup/flow_gone.html"), 400


@bp.route("/continue")
def resume():
    try:
        row = company_signup.check_link(request.args.get("token"))
    except company_signup.SignupLinkError as exc:
        return _link_error(exc.expired)
    flow = steps.resume(row)
    target = "company_signup.account" if flow.state == steps.State.ACCOUNT.value \
        else "company_signup.company"
    return redirect(url_for(target, flow=flow.id), code=303)


def _signup_flow():
    """(flow, None) or (None, error response)."""
    try:
        return steps.load(request.values.get("flow")), None
    except company_signup.SignupLinkError as exc:
        return None, _link_error(exc.expired)
    except flows.FlowError:
        return None, _flow_gone()


def _company_page(flow, values: dict, errors: dict | None = None, status: int = 200):
    return render_template("flows/company_signup/company.html", flow=flow, values=values,
                           errors=field_errors(errors or {}, values.get("identification_type")),
                           id_types=company_identity.ID_TYPES,
                           email=email_address.display(flow.data["email"])), status


@bp.route("/company", methods=["GET", "POST"])
def company():
    flow, error = _signup_flow()
    if error is not None:
        return error
    if request.method == "GET":
        return _company_page(flow, flow.data.get("company") or {})
    values = {key: request.form.get(key, "")[:200] for key in (
        "company_name", "identification_type", "identification_number", "contact_phone")}
    try:
        steps.submit_company(flow, request.form)
    except company_signup.SignupError as exc:
        return _company_page(flow, values, exc.errors, 400)
    return redirect(url_for("company_signup.account", flow=flow.id), code=303)


def _account_page(flow, values: dict, errors: dict | None = None,
                  problems: list[str] | None = None, status: int = 200):
    return render_template(
        "flows/company_signup/account.html", flow=flow, values=values,
        errors=field_errors(errors or {}), company=flow.data.get("company") or {},
        email=flow.data["email"], email_shown=email_address.display(flow.data["email"]),
        pw=password_form.context(company_signup.password_policy(), flow.data["email"],
                                 problems)), status


@bp.route("/account", methods=["GET", "POST"])
def account():
    flow, error = _signup_flow()
    if error is not None:
        return error
    if flow.state != steps.State.ACCOUNT.value:
        return redirect(url_for("company_signup.company", flow=flow.id), code=303)
    default_locale = flow.data.get("locale") or _locale()
    if request.method == "GET":
        return _account_page(flow, {"locale": default_locale})
    values = {key: request.form.get(key, "")[:100] for key in (
        "given_name", "family_name", "locale")}
    try:
        user, tenant = steps.submit_account(flow, request.form, request.remote_addr)
    except company_signup.SignupError as exc:
        return _account_page(flow, values, exc.errors, exc.problems, 400)
    except company_signup.SignupLinkError as exc:
        return _link_error(exc.expired)
    except company_signup.EmailTaken:
        return render_template("flows/company_signup/email_taken.html"), 409
    except flows.FlowError:
        return _flow_gone()
    # The account was just made with a password: that is the factor this session completed.
    password = get_factor("password")
    sign_in(session, user.id, [completed(password.id, Accepted(user.id, password.amr))])
    return redirect(url_for("company_signup.welcome", company=tenant.slug), code=303)


# ----------------------------------------------------------------------------- the end


@bp.route("/welcome")
def welcome():
    """The new company's space: shown to its members once signed in."""
    if g.user is None:
        return redirect(url_for("flows.login"), code=303)
    membership = db.session.scalar(
        select(Membership).join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.user_id == g.user.id, Tenant.slug == request.args.get("company", "")))
    if membership is None:
        return redirect(url_for("flows.home"), code=303)
    return render_template("flows/company_signup/welcome.html", membership=membership,
                           tenant=None, company=membership.tenant)
