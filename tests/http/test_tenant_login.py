"""The tenant's branded entry page: the normal login, with the tenant's name, logo and support."""

from __future__ import annotations

import pytest

from idp.extensions import db
from tests import outbox
from tests.support import PASSWORD, csrf_of


@pytest.fixture
def client(app):
    """Requests in their own app context (see tests/outbox.py), like separate browsers."""
    return outbox.isolated_client(app)


@pytest.fixture
def tenant(factory):
    tenant = factory.tenant("acme", "Acme Fleet")
    tenant.settings = {"logo_url": "https://cdn.acme.example/logo.png",
                       "support_email": "help@acme.example", "support_phone": "+33 1 23 45 67 89",
                       "brand_color": "#7a1f5c"}
    db.session.commit()
    return tenant


def _post(client, path, email, password):
    page = client.get(path)
    return client.post(path, data={"email": email, "password": password,
                                   "csrf_token": csrf_of(page.text)})


def test_branded_page(client, tenant):
    page = client.get("/t/acme/login")
    assert page.status_code == 200
    html = page.text
    assert '<span class="tenant-name">Acme Fleet</span>' in html
    assert 'src="https://cdn.acme.example/logo.png"' in html
    assert "mailto:help@acme.example" in html and "tel:+33123456789" in html
    assert 'href="/t/acme/register"' in html  # self-registration allowed
    assert 'action="/t/acme/login"' in html
    assert 'name="email"' in html and 'name="password"' in html
    csp = page.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn.acme.example;" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    css = client.get("/t/acme/brand.css?v=x")
    assert css.status_code == 200 and css.mimetype == "text/css" and "#7a1f5c" in css.text
    assert "/t/acme/brand.css" in html


def test_plain_login_page_is_not_branded(client, tenant):
    page = client.get("/login")
    assert "Acme Fleet" not in page.text and "/t/acme/register" not in page.text
    assert "cdn.acme.example" not in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("logo", [
    "javascript:alert(1)", "http://cdn.acme.example/logo.png", "//evil.example/x.png",
    "https://user@evil.example/x.png", "data:image/svg+xml,<svg onload=alert(1)>",
    "https://cdn.acme.example/x.png' onerror='alert(1)",
])
def test_unsafe_logos_are_ignored(client, tenant, logo):
    tenant.settings = {**tenant.settings, "logo_url": logo}
    db.session.commit()
    page = client.get("/t/acme/login")
    assert "tenant-logo" not in page.text
    assert "img-src 'self' data:;" in page.headers["Content-Security-Policy"]


def test_a_logo_of_this_site_needs_no_csp_change(client, tenant):
    tenant.settings = {"logo_url": "/static/acme.png"}
    db.session.commit()
    page = client.get("/t/acme/login")
    assert 'src="/static/acme.png"' in page.text
    assert "img-src 'self' data:;" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("color", ["#ffff00", "#eeeeee", "red", "#12345", "#123456;}"])
def test_unreadable_or_invalid_colours_are_ignored(client, tenant, color):
    tenant.settings = {"brand_color": color}
    db.session.commit()
    assert "brand.css" not in client.get("/t/acme/login").text


def test_wrong_password_stays_on_the_branded_page_with_the_usual_message(client, tenant, factory):
    factory.user("alice@example.com", tenant=tenant)
    branded = _post(client, "/t/acme/login", "alice@example.com", PASSWORD + "x")
    plain = _post(client, "/login", "alice@example.com", PASSWORD + "x")
    assert branded.status_code == plain.status_code == 400
    assert "Incorrect email address or password." in branded.text
    assert "Acme Fleet" in branded.text and 'action="/t/acme/login"' in branded.text
    unknown = _post(client, "/t/acme/login", "nobody@example.com", PASSWORD)
    assert unknown.status_code == 400
    assert "Incorrect email address or password." in unknown.text


def test_sign_in_through_the_tenant_page(client, tenant, factory):
    factory.user("alice@example.com", tenant=tenant)
    response = _post(client, "/t/acme/login", "alice@example.com", PASSWORD)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "Signed in as alice@example.com" in client.get("/").text


def test_the_session_id_rotates_at_login(client, tenant, factory):
    factory.user("alice@example.com", tenant=tenant)
    page = client.get("/t/acme/login")
    before = client.get_cookie("idp_session")
    client.post("/t/acme/login", data={"email": "alice@example.com", "password": PASSWORD,
                                       "csrf_token": csrf_of(page.text)})
    after = client.get_cookie("idp_session")
    assert before is not None and after is not None and before.value != after.value


def test_tenant_page_inside_an_authorization_flow(client, tenant, factory, driver):
    factory.user("alice@example.com", tenant=tenant)
    rp = factory.client(tenant=tenant)
    response = driver.authorize(rp, code_challenge="a" * 43, code_challenge_method="S256")
    location = response.headers["Location"]
    assert location.startswith("/login?flow=")
    flow = location.split("flow=", 1)[1]
    branded = f"/t/acme/login?flow={flow}"
    page = client.get(branded)
    assert page.status_code == 200 and f'action="/t/acme/login?flow={flow}"' in page.text
    done = client.post(branded, data={"email": "alice@example.com", "password": PASSWORD,
                                      "csrf_token": csrf_of(page.text)})
    assert done.status_code == 303
    assert done.headers["Location"].startswith("/oauth/authorize/resume?flow=")


def test_missing_csrf_is_refused(client, tenant, factory):
    factory.user("alice@example.com", tenant=tenant)
    client.get("/t/acme/login")
    response = client.post("/t/acme/login", data={"email": "alice@example.com",
                                                  "password": PASSWORD})
    assert response.status_code == 400
    assert "Signed in as" not in client.get("/").text


def test_no_registration_link_when_disabled(client, tenant):
    tenant.self_registration = False
    db.session.commit()
    assert "/t/acme/register" not in client.get("/t/acme/login").text


def test_unknown_slug(client):
    assert client.get("/t/nope/login").status_code == 404
    assert client.get("/t/nope/brand.css").status_code == 404


def test_french(client, tenant):
    page = client.get("/t/acme/login", headers={"Accept-Language": "fr"})
    assert 'lang="fr"' in page.text and "Se connecter" in page.text
