"""Tenant branding over HTTP: `idp tenant update`, the /t/<slug>/ entry, the logo, sign-in pages."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from idp.extensions import db
from idp.models import Tenant, TenantLogo
from tests import outbox
from tests.support import PASSWORD, csrf_of, query_of

LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
SCRIPTED_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
                b'<rect width="1" height="1"/></svg>')
PLAIN_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"><rect width="4" height="4"/></svg>'


@pytest.fixture
def http(app):
    """Requests in their own app context (tests/outbox.py), like a separate browser."""
    return outbox.isolated_client(app)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def acme(factory):
    return factory.tenant("acme", "Acme Fleet")


def png(size=(80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (122, 31, 92)).save(out, format="PNG")
    return out.getvalue()


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def update(runner, *args):
    return runner.invoke(args=["idp", "tenant", "update", "acme", *args])


def fresh(tenant: Tenant) -> Tenant:
    db.session.expire_all()
    return db.session.get(Tenant, tenant.id)


@pytest.fixture
def branded(runner, acme, tmp_path):
    result = update(runner, "--logo", write(tmp_path, "acme.png", png()), "--color", "#7A1F5C",
                    "--support-email", "help@acme.example",
                    "--support-url", "https://help.acme.example/start",
                    "--display-name", "fr=Acme Flotte")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# ----------------------------------------------------------------------------- the command


def test_update_sets_every_branding_setting(branded, acme):
    brand = branded["branding"]
    assert brand["logo"] == "image/png" and brand["color"] == "#7a1f5c"
    assert brand["support_email"] == "help@acme.example"
    assert brand["support_url"] == "https://help.acme.example/start"
    assert brand["names"] == {"fr": "Acme Flotte"}
    row = db.session.get(TenantLogo, acme.id)
    assert row is not None and row.content_type == "image/png"
    assert brand["logo_url"] == f"/t/acme/logo?v={row.digest[:16]}"


@pytest.mark.parametrize(("name", "data", "message"), [
    ("logo.png", b"just some text, not an image", "not a PNG, JPEG, WebP or SVG image"),
    ("logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (256 * 1024), "larger than 256 KiB"),
    ("logo.svg", SCRIPTED_SVG, "<script>"),
    ("logo.svg", png(), "image/png image but its name ends in .svg"),
    ("logo.png", png((2000, 10)), "at most 1024x1024"),
])
def test_a_bad_logo_is_refused_and_nothing_changes(runner, acme, tmp_path, name, data, message):
    result = update(runner, "--logo", write(tmp_path, name, data))
    assert result.exit_code == 2 and message in result.output, result.output
    assert db.session.get(TenantLogo, acme.id) is None
    assert "logo" not in (fresh(acme).settings or {})


def test_a_refused_logo_keeps_the_previous_one(runner, branded, acme, tmp_path):
    before = db.session.get(TenantLogo, acme.id).digest
    result = update(runner, "--logo", write(tmp_path, "x.svg", SCRIPTED_SVG), "--color", "#000000")
    assert result.exit_code == 2
    db.session.expire_all()
    assert db.session.get(TenantLogo, acme.id).digest == before
    assert fresh(acme).settings["brand_color"] == "#7a1f5c"  # nothing of the command applied


@pytest.mark.parametrize("color", ["#ffff00", "#7fb3ff", "#999999"])
def test_a_colour_failing_contrast_is_refused(runner, acme, color):
    result = update(runner, "--color", color)
    assert result.exit_code == 2
    assert "4.5:1" in result.output and "darker" in result.output, result.output
    assert "brand_color" not in (fresh(acme).settings or {})


@pytest.mark.parametrize(("option", "value"), [
    ("--support-email", "help@"), ("--support-url", "http://help.acme.example/"),
    ("--color", "purple"), ("--display-name", "de=Acme"), ("--display-name", "Acme"),
])
def test_other_bad_settings_are_refused(runner, acme, option, value):
    result = update(runner, option, value)
    assert result.exit_code == 2 and result.output.startswith("error: "), result.output


def test_no_logo_removes_it(runner, branded, acme, http):
    path = branded["branding"]["logo_url"]
    assert http.get(path).status_code == 200
    result = update(runner, "--no-logo")
    assert result.exit_code == 0 and json.loads(result.output)["branding"]["logo"] is None
    assert http.get(path).status_code == 404
    assert "tenant-logo" not in http.get("/t/acme/").text


def test_unknown_tenant(runner):
    result = runner.invoke(args=["idp", "tenant", "update", "nope", "--color", "#000000"])
    assert result.exit_code == 2 and "no tenant" in result.output


# ----------------------------------------------------------------------------- the logo


def test_the_logo_is_served_with_safe_headers(http, branded):
    path = branded["branding"]["logo_url"]
    response = http.get(path)
    assert response.status_code == 200 and response.data.startswith(b"\x89PNG")
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == LOGO_CSP
    assert response.headers["Content-Disposition"] == 'inline; filename="logo.png"'
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    etag = response.headers["ETag"]
    assert etag.strip('"') == branded["branding"]["logo_url"].split("v=")[1] + etag.strip('"')[16:]
    again = http.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    unversioned = http.get("/t/acme/logo")
    assert unversioned.headers["Cache-Control"] == "public, max-age=300"


def test_an_svg_logo_is_served_as_svg_under_a_csp_that_runs_nothing(runner, http, acme, tmp_path):
    assert update(runner, "--logo", write(tmp_path, "acme.svg", PLAIN_SVG)).exit_code == 0
    response = http.get("/t/acme/logo")
    assert response.status_code == 200 and response.data == PLAIN_SVG
    assert response.headers["Content-Type"] == "image/svg+xml"
    assert response.headers["Content-Security-Policy"] == LOGO_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_logo_and_unknown_tenants_are_404(http, acme):
    assert http.get("/t/acme/logo").status_code == 404
    assert http.get("/t/nope/logo").status_code == 404
    assert http.get("/t/nope/brand.css").status_code == 404


# ----------------------------------------------------------------------------- pages


def test_the_entry_address_shows_the_tenants_branding(http, branded):
    page = http.get("/t/acme/")
    assert page.status_code == 200
    html = page.text
    header = html.split('<header class="site-header">', 1)[1].split("</header>", 1)[0]
    assert '<span class="tenant-name">Acme Fleet</span>' in header and "Identity" not in header
    assert f'src="{branded["branding"]["logo_url"]}"' in header
    assert re.search(r'href="/t/acme/brand\.css\?v=[0-9a-f]{8}"', html)
    assert 'href="https://help.acme.example/start"' in html and "mailto:help@acme.example" in html
    assert 'action="/t/acme/login"' in html
    assert 'href="/t/acme/password/forgot"' in html and 'href="/t/acme/register"' in html
    assert "img-src 'self' data:;" in page.headers["Content-Security-Policy"]  # our own logo
    css = http.get(re.search(r'href="(/t/acme/brand\.css[^"]*)"', html).group(1))
    assert "--brand: #7a1f5c" in css.text and css.mimetype == "text/css"


def test_the_entry_address_in_french_shows_the_french_name(http, branded):
    page = http.get("/t/acme/", headers={"Accept-Language": "fr"})
    assert '<span class="tenant-name">Acme Flotte</span>' in page.text
    assert 'lang="fr"' in page.text and "Se connecter" in page.text


def test_the_forgot_page_under_the_entry_address_is_branded(http, branded):
    page = http.get("/t/acme/password/forgot")
    assert page.status_code == 200 and "Acme Fleet" in page.text
    assert 'action="/t/acme/password/forgot"' in page.text and 'href="/t/acme/login"' in page.text
    sent = http.post("/t/acme/password/forgot",
                     data={"email": "nobody@example.com", "csrf_token": csrf_of(page.text)})
    assert sent.status_code == 200 and "Acme Fleet" in sent.text


@pytest.mark.parametrize(("language", "message"), [
    ("en", "This page does not exist."), ("fr", "Cette page n&#39;existe pas."),
])
def test_an_unknown_slug_is_a_translated_404(http, acme, language, message):
    for path in ("/t/nope/", "/t/nope/login", "/t/nope/password/forgot", "/t/nope/register",
                 "/t/" + "x" * 64 + "/"):
        page = http.get(path, headers={"Accept-Language": language})
        assert page.status_code == 404 and message in page.text, path
        assert f'lang="{language}"' in page.text


def _authorize(http, client_id: str, redirect_uri: str, **params):
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
             "scope": "openid", "state": "s", "code_challenge": "a" * 43,
             "code_challenge_method": "S256", **params}
    response = http.get("/oauth/authorize", query_string=query)
    assert response.status_code in (302, 303), response.status_code
    assert response.headers["Location"].startswith("/login?")
    return http.get(response.headers["Location"])


def test_a_sign_in_for_a_client_shows_its_tenants_branding(http, branded, factory):
    rp = factory.client(tenant=db.session.get(Tenant, branded["id"]))
    page = _authorize(http, rp.client_id, rp.redirect_uri)
    assert '<span class="tenant-name">Acme Fleet</span>' in page.text
    assert branded["branding"]["logo_url"] in page.text and "/t/acme/brand.css" in page.text


def test_organization_brands_a_shared_client_but_not_another_tenants(http, branded, factory):
    globex = factory.tenant("globex", "Globex Corporation")
    globex.settings = {"brand_color": "#0a5c36"}
    db.session.commit()
    shared = factory.client(shared=True)
    page = _authorize(http, shared.client_id, shared.redirect_uri, organization="globex")
    assert '<span class="tenant-name">Globex Corporation</span>' in page.text
    assert "/t/globex/brand.css" in page.text
    plain = _authorize(http, shared.client_id, shared.redirect_uri)
    assert "tenant-name" not in plain.text and "Identity" in plain.text
    owned = factory.client(tenant=db.session.get(Tenant, branded["id"]))
    hinted = _authorize(http, owned.client_id, owned.redirect_uri, organization="globex")
    assert "Acme Fleet" in hinted.text and "Globex" not in hinted.text


def test_the_code_page_keeps_the_branding(http, branded, factory):
    acme = db.session.get(Tenant, branded["id"])
    from idp.factors.assurance import REQUIRED, set_mfa_policy

    set_mfa_policy(acme, REQUIRED)
    db.session.commit()
    factory.user("alice@example.com", tenant=acme)
    rp = factory.client(tenant=acme)
    page = _authorize(http, rp.client_id, rp.redirect_uri)
    login_url = re.search(r'<form method="post" action="(/login[^"]+)"', page.text).group(1)
    login_url = login_url.replace("&amp;", "&")
    step = http.post(login_url, data={"email": "alice@example.com", "password": PASSWORD,
                                      "csrf_token": csrf_of(page.text)})
    assert step.status_code == 303 and "signin=" in step.headers["Location"]
    code_page = http.get(step.headers["Location"])
    assert code_page.status_code == 200 and "Acme Fleet" in code_page.text
    assert query_of(step.headers["Location"])["signin"]


def test_an_empty_value_clears_a_setting_and_logo_options_exclude_each_other(
        runner, branded, acme, tmp_path):
    cleared = update(runner, "--color", "", "--support-url", "")
    assert cleared.exit_code == 0, cleared.output
    brand = json.loads(cleared.output)["branding"]
    assert brand["color"] is None and brand["support_url"] is None
    assert brand["support_email"] == "help@acme.example" and brand["logo"] == "image/png"
    both = update(runner, "--logo", write(tmp_path, "a.png", png()), "--no-logo")
    assert both.exit_code == 2 and "exclude each other" in both.output
    missing = update(runner, "--logo", str(tmp_path / "absent.png"))
    assert missing.exit_code == 2 and "cannot read" in missing.output
