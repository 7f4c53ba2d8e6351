"""Pages of a tenant's branded entry: sign in, register, confirm the email address.

``/t/<slug>/login`` is the normal login page (the same view, the same logic)
with the tenant's branding and its "Create an account" link.

``/verify-email?token=`` (any browser) never activates on its own: its page has
two forms, both POSTs with CSRF; ``choice=password`` finishes with the password
chosen at registration, ``choice=new_password`` with a new one chosen there
(services/registration.py says how this prevents pre-account takeover).
"""

from __future__ import annotations

import hashlib

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from idp.flows import base as flows
from idp.flows import password_form
from idp.flows import registration as steps
from idp.flows.signup_messages import field_errors, link_message
from idp.models import Tenant
from idp.security import allow_image_origins
from idp.services import accounts, email_address, registration
from idp.services.tenants import get_by_slug

bp = Blueprint("registration", __name__)
MAX_SLUG = 63


def _use_tenant(tenant: Tenant) -> Tenant:
    g.tenant = tenant
    g.tenant_brand = steps.branding(tenant)
    return tenant


def _tenant_or_404(slug: str) -> Tenant:
    tenant = get_by_slug(slug) if len(slug) <= MAX_SLUG else None
    if tenant is None:
        abort(404)
    return _use_tenant(tenant)


@bp.context_processor
def _tenant_context() -> dict:
    tenant = g.get("tenant")
    if tenant is None:
        return {}
    brand = g.tenant_brand
    context = {"tenant": tenant, "tenant_brand": brand}
    if brand.color:
        version = hashlib.sha256(brand.color.encode()).hexdigest()[:8]
        context["tenant_css"] = url_for("registration.brand_css", slug=tenant.slug, v=version)
    if request.endpoint == "registration.tenant_login":
        context["login_action"] = url_for("registration.tenant_login", slug=tenant.slug,
                                          flow=request.values.get("flow") or None)
    return context


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    brand = g.get("tenant_brand")
    if brand is not None and brand.logo_origin:
        # The logo lives on the tenant's own site: allow that one origin for images.
        allow_image_origins(response, [brand.logo_origin])
    return response


# ----------------------------------------------------------------------------- entry


@bp.route("/t/<slug>/login", methods=["GET", "POST"])
def tenant_login(slug: str):
    _tenant_or_404(slug)
    from idp.flows.signin_views import login

    return login()  # the one login view; the branding comes from the context above


@bp.route("/t/<slug>/brand.css")
def brand_css(slug: str):
    tenant = get_by_slug(slug) if len(slug) <= MAX_SLUG else None
    if tenant is None:
        abort(404)
    response = make_response(steps.brand_css(steps.branding(tenant)))
    response.mimetype = "text/css"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# ----------------------------------------------------------------------------- register


def _closed():
    return render_template("flows/registration/closed.html"), 403


def _form(tenant: Tenant, email: str = "", errors: dict | None = None,
          problems: list[str] | None = None, status: int = 200):
    policy = registration.policy_for(tenant)
    return render_template("flows/registration/register.html", email=email[:320],
                           errors=field_errors(errors or {}),
                           pw=password_form.context(policy, None, problems)), status


@bp.route("/t/<slug>/register", methods=["GET", "POST"])
def register(slug: str):
    tenant = _tenant_or_404(slug)
    if not tenant.self_registration:
        return _closed()
    if request.method == "GET":
        return _form(tenant)
    email = request.form.get("email", "")
    try:
        result = registration.register(
            tenant, email, request.form.get("new_password", ""),
            request.form.get("confirm_password", ""), locale=str(get_locale() or "en"),
            ip=request.remote_addr)
    except registration.RegistrationClosed:
        return _closed()
    except registration.RegistrationError as exc:
        return _form(tenant, email, exc.errors, exc.problems, 400)
    flow = steps.start(tenant, result.email)
    return redirect(url_for("registration.sent", slug=tenant.slug, flow=flow.id), code=303)


def _registration_flow(tenant: Tenant):
    try:
        return steps.load(request.values.get("flow"), tenant)
    except flows.FlowError:
        return None


@bp.route("/t/<slug>/register/sent")
def sent(slug: str):
    tenant = _tenant_or_404(slug)
    flow = _registration_flow(tenant)
    if flow is None:
        return redirect(url_for("registration.register", slug=tenant.slug), code=303)
    return render_template("flows/registration/sent.html", flow=flow,
                           email=email_address.display(flow.data.get("email", "")),
                           resent=bool(flow.data.get("resent")))


@bp.route("/t/<slug>/register/resend", methods=["POST"])
def resend(slug: str):
    tenant = _tenant_or_404(slug)
    flow = _registration_flow(tenant)
    if flow is None:
        return redirect(url_for("registration.register", slug=tenant.slug), code=303)
    steps.resend(flow, tenant)
    return redirect(url_for("registration.sent", slug=tenant.slug, flow=flow.id), code=303)


# ----------------------------------------------------------------------------- verify


def _link_error(exc: registration.VerificationError):
    return render_template("flows/registration/link_error.html",
                           message=link_message(exc.expired), expired=exc.expired), 400


def _verify_page(token: str, link: registration.PendingLink, *, password_error: str | None = None,
                 problems: list[str] | None = None, status: int = 200):
    return render_template(
        "flows/registration/verify.html", token=token, username=link.email,
        email=email_address.display(link.email), password_error=password_error,
        pw=password_form.context(registration.link_policy(link), link.email, problems)), status


@bp.route("/verify-email", methods=["GET", "POST"])
def verify():
    token = request.values.get("token", "")
    try:
        link = registration.check_link(token)
    except registration.VerificationError as exc:
        return _link_error(exc)
    if link.tenant is not None:
        _use_tenant(link.tenant)
    if request.method == "GET":
        return _verify_page(token, link)
    choice = request.form.get("choice")
    try:
        if choice == "password":
            registration.confirm_with_password(token, request.form.get("password"),
                                               ip=request.remote_addr)
        elif choice == "new_password":
            form = password_form.read(request.form)
            if form.problems:
                return _verify_page(token, link, problems=form.problems, status=400)
            registration.confirm_with_new_password(token, form.password, ip=request.remote_addr)
        else:
            return _verify_page(token, link, status=400)
    except registration.WrongPassword:
        return _verify_page(token, link, status=400, password_error=_(
            "This is not the password chosen at registration. If you do not remember it, or "
            "registered more than once, choose a new password below."))
    except registration.TooManyAttempts:
        return _verify_page(token, link, status=429, password_error=_(
            "Too many wrong passwords for this account. Choose a new password below to finish."))
    except accounts.WeakPassword as exc:
        return _verify_page(token, link, problems=exc.problems, status=400)
    except registration.VerificationError as exc:
        return _link_error(exc)
    return render_template("flows/registration/verified.html",
                           email=email_address.display(link.email))


# ----------------------------------------------------------------------------- setup

def init_app(app) -> None:
    """The per-IP limits of our POSTs (their settings live in idp/config.py)."""
    from idp.flows import throttling

    login = ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW")
    signup = ("register", "IDP_REGISTER_IP_LIMIT", "IDP_REGISTER_IP_WINDOW")
    link = ("link", "IDP_LINK_IP_LIMIT", "IDP_LINK_IP_WINDOW")
    throttling.LIMITS.update({
        "registration.tenant_login": login,
        "registration.register": signup,
        "registration.resend": signup,
        "registration.verify": link,
        "company_signup.start": signup,
        "company_signup.resend": signup,
        "company_signup.account": link,
        "account.change_email": login,
        "account.confirm_email": link,
    })
