"""Tenant branding on the hosted pages: which tenant a page shows, its logo and colours.

Every hosted page gets ``tenant_brand`` (services/branding.py) when it belongs to a
tenant: a tenant's entry pages ``/t/<slug>/...`` (registration_views sets
``g.tenant``), and the pages of a sign-in for a client: ``?flow=`` (the
authorization flow) or ``?signin=`` (its sign-in), whose tenant is the one chosen
in the flow, else ``organization`` when the client serves it, else the client's
own (``branding.tenant_for_authorization``). Other pages show ``IDP_BRAND_NAME``.

``/t/<slug>/logo`` serves the uploaded logo from the database with its type,
nosniff, ``Content-Disposition: inline``, a CSP that forbids everything an image
does not need (an SVG opened on its own runs nothing and fetches nothing), an ETag
and cache headers; ``/t/<slug>/brand.css`` the colour as CSS custom properties.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    g,
    has_request_context,
    make_response,
    request,
    url_for,
)
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException

from idp.extensions import db
from idp.flows import base as flows
from idp.flows import signin
from idp.flows.authorization import FLOW_TYPE as AUTHORIZATION
from idp.models import Tenant
from idp.oauth.fast import API_PREFIXES
from idp.oauth.server import authorization_server
from idp.security import allow_image_origins
from idp.services import branding, logos, memberships
from idp.services.tenants import get_by_slug

bp = Blueprint("branding", __name__)
MAX_SLUG = 63
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
_UNSET = object()


def _tenant_or_404(slug: str) -> Tenant:
    tenant = get_by_slug(slug) if len(slug) <= MAX_SLUG else None
    if tenant is None:
        abort(404)
    return tenant


def _authorization_tenant(flow_id: str, user_id: int | None = None) -> Tenant | None:
    """Once the person is known (``user_id``, or the signed-in one), an ``organization``
    they are not a member of brands nothing: the pages after the password must not tell
    whether that tenant exists (the picker ignores it the same way)."""
    try:
        flow = flows.load(flow_id, AUTHORIZATION)
    except flows.FlowError:
        return None
    client = authorization_server().query_client(flow.params.get("client_id"))
    organization = flow.params.get("organization")
    user_id = user_id or (g.user.id if g.get("user") is not None else None)
    if organization and user_id is not None:
        hinted = get_by_slug(organization) if len(organization) <= MAX_SLUG else None
        if hinted is None or memberships.find(user_id, hinted.id) is None:
            organization = None
    return branding.tenant_for_authorization(client, organization, flow.data.get("tenant_id"))


def _signin_tenant(attempt_id: str) -> Tenant | None:
    try:
        attempt = flows.load(attempt_id, signin.FLOW_TYPE)
    except flows.FlowError:
        return None
    if attempt.params.get("authorization"):
        return _authorization_tenant(attempt.params["authorization"],
                                     attempt.data.get("user_id"))
    tenant_id = attempt.params.get("tenant_id")
    return db.session.get(Tenant, tenant_id) if tenant_id else None


def page_tenant() -> Tenant | None:
    """The tenant whose branding this page shows (module docstring), once per request."""
    cached = g.get("page_tenant", _UNSET)
    if cached is not _UNSET:
        return cached
    tenant = g.get("tenant")
    if tenant is None and not request.path.startswith(API_PREFIXES):
        try:
            values = request.values
        except HTTPException:  # a body too large or malformed: its error page stays plain
            values = request.args
        if values.get("flow"):
            tenant = _authorization_tenant(values["flow"])
        elif values.get("signin"):
            tenant = _signin_tenant(values["signin"])
    g.page_tenant = tenant
    return tenant


def page_brand() -> branding.Branding | None:
    cached = g.get("page_brand", _UNSET)
    if cached is not _UNSET:
        return cached
    tenant = page_tenant()
    brand = branding.branding(tenant, str(get_locale() or "")) if tenant is not None else None
    g.page_brand = brand
    return brand


def _context() -> dict:
    if not has_request_context():  # an email rendered by the worker or the command line
        return {}
    brand = page_brand()
    if brand is None:
        return {}
    context = {"tenant_brand": brand}
    version = branding.css_version(brand)
    if version:
        context["tenant_css"] = url_for("branding.brand_css", slug=brand.slug, v=version)
    if g.get("tenant") is not None:  # an entry page: its links stay under /t/<slug>/
        context["entry_slug"] = brand.slug
    return context


def _logo_origin_csp(response: Response) -> Response:
    brand = g.get("page_brand")
    if isinstance(brand, branding.Branding) and brand.logo_origin:
        # The logo lives on the tenant's own site: allow that one origin for images.
        allow_image_origins(response, [brand.logo_origin])
    return response


def _forget() -> None:
    # Per-request values must not survive in `g` when several requests share one
    # app context (the test suite does that).
    g.pop("page_tenant", None)
    g.pop("page_brand", None)


@bp.route("/t/<slug>/brand.css")
def brand_css(slug: str):
    response = make_response(branding.brand_css(branding.branding(_tenant_or_404(slug))))
    response.mimetype = "text/css"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/t/<slug>/logo")
def logo(slug: str):
    row = branding.logo_of(_tenant_or_404(slug))
    if row is None:
        abort(404)
    response = make_response(row.data)
    response.headers["Content-Type"] = row.content_type
    response.headers["Content-Disposition"] = \
        f'inline; filename="{logos.FILE_NAMES.get(row.content_type, "logo")}"'
    response.headers["Content-Security-Policy"] = LOGO_POLICY
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"  # emails show it too
    response.set_etag(row.digest)
    current = request.args.get("v") == row.digest[:16]
    # A versioned address never changes its content; the bare one is revalidated.
    response.headers["Cache-Control"] = ("public, max-age=31536000, immutable" if current
                                         else "public, max-age=300")
    return response.make_conditional(request)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_forget)
    app.context_processor(_context)
    app.after_request(_logo_origin_csp)
