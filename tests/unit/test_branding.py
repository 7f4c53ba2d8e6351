"""Tenant branding rules (services/branding.py): colours, logos, whose branding a sign-in shows."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from idp.extensions import db
from idp.models import Client, TenantLogo
from idp.services import branding
from idp.services.branding import BrandingError
from idp.services.logos import Logo, LogoError, validate_logo

MAX = 256 * 1024
SIDE = 1024


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (64, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (11, 77, 187)).save(out, format=kind)
    return out.getvalue()


def check(data: bytes, name: str) -> Logo:
    return validate_logo(data, name, max_bytes=MAX, max_side=SIDE)


CLEAN_SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
             b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
             b' viewBox="0 0 10 10"><title>Acme</title><defs><linearGradient id="g">'
             b'<stop offset="0" stop-color="#0b4dbb"/></linearGradient></defs>'
             b'<style>.a { fill: url(#g); }</style>'
             b'<rect class="a" width="10" height="10" fill="url(#g)"/><use xlink:href="#g"/></svg>')


# ----------------------------------------------------------------------------- colour


def test_contrast_ratio_matches_wcag():
    assert branding.contrast_ratio("#000000", "#ffffff") == pytest.approx(21)
    assert branding.contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1)
    assert branding.contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert branding.contrast_ratio("#777777", "#ffffff") < 4.5


@pytest.mark.parametrize("color", ["#ffff00", "#777777", "#7FB3FF", "#ffffff",
                                   "#767676"])  # 4.54:1 on white, but 4.15:1 on the page
def test_a_colour_failing_contrast_is_refused_with_the_ratio(color):
    with pytest.raises(BrandingError) as refused:
        branding.validate_color(color)
    assert "4.5:1" in str(refused.value) and "#f3f5f8" in str(refused.value)


def test_an_accepted_colour_is_readable_on_every_background_it_meets():
    color = branding.validate_color("#5e5e5e")
    for background in ("#ffffff", "#f3f5f8"):
        assert branding.contrast_ratio(color, background) >= 4.5


@pytest.mark.parametrize("color", ["red", "#12345", "#1234567", "#12345g", "#123456;}", ""])
def test_a_colour_not_written_rrggbb_is_refused(color):
    with pytest.raises(BrandingError, match="#RRGGBB"):
        branding.validate_color(color)


def test_a_dark_colour_is_kept_lower_case_and_its_hover_is_darker():
    assert branding.validate_color("#7A1F5C") == "#7a1f5c"
    css = branding.brand_css(branding.Branding("A", None, None, None, None, None, "#7a1f5c"))
    assert "--brand: #7a1f5c" in css and "--brand-text: #ffffff" in css
    hover = css.split("--brand-hover: ")[1][:7]
    assert branding.contrast_ratio(hover, "#ffffff") > branding.contrast_ratio("#7a1f5c", "#ffffff")


# ----------------------------------------------------------------------------- logos


@pytest.mark.parametrize(("kind", "name", "content_type"), [
    ("PNG", "logo.png", "image/png"), ("JPEG", "logo.JPG", "image/jpeg"),
    ("JPEG", "logo.jpeg", "image/jpeg"), ("WEBP", "logo.webp", "image/webp"),
])
def test_raster_logos_are_decoded_and_re_encoded(kind, name, content_type):
    logo = check(image_bytes(kind), name)
    assert logo.content_type == content_type
    with Image.open(io.BytesIO(logo.data)) as decoded:
        assert decoded.format == kind and decoded.size == (64, 32)


def test_re_encoding_drops_what_was_appended_to_an_image():
    polyglot = image_bytes() + b"<script>alert(1)</script>"
    logo = check(polyglot, "logo.png")
    assert b"<script>" not in logo.data


@pytest.mark.parametrize(("data", "name"), [
    (b"hello, this is text", "logo.png"),
    (b"GIF89a" + b"\x00" * 40, "logo.png"),
    (image_bytes()[:60], "logo.png"),  # truncated: the header reads, the pixels do not
    (b"%PDF-1.7\n", "logo.png"),
])
def test_a_file_that_is_not_an_image_is_refused(data, name):
    with pytest.raises(LogoError, match="not a PNG, JPEG, WebP or SVG image"):
        check(data, name)


def test_a_gif_is_refused_even_though_pillow_reads_it():
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="GIF")
    with pytest.raises(LogoError):
        check(out.getvalue(), "logo.png")


def test_too_large_a_file_is_refused():
    with pytest.raises(LogoError, match="larger than 256 KiB"):
        check(b"\x89PNG" + b"\x00" * MAX, "logo.png")


def test_too_many_pixels_are_refused():
    with pytest.raises(LogoError, match="at most 1024x1024"):
        check(image_bytes(size=(1025, 10)), "logo.png")


def test_a_png_renamed_svg_is_refused():
    with pytest.raises(LogoError, match="image/png image but its name ends in .svg"):
        check(image_bytes(), "logo.svg")


def test_an_svg_renamed_png_is_refused():
    with pytest.raises(LogoError, match="image/svg\\+xml image but its name ends in .png"):
        check(CLEAN_SVG, "logo.png")


@pytest.mark.parametrize("name", ["logo", "logo.gif", "logo.html", "logo.svgz"])
def test_other_file_names_are_refused(name):
    with pytest.raises(LogoError, match="must end in"):
        check(image_bytes(), name)


def test_a_plain_svg_is_accepted_as_is():
    logo = check(CLEAN_SVG, "logo.svg")
    assert logo.content_type == "image/svg+xml" and logo.data == CLEAN_SVG


SVG = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{}</svg>'


@pytest.mark.parametrize("body", [
    "<script>alert(1)</script>",
    '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>',
    '<rect width="1" height="1" onload="alert(1)"/>',
    '<rect width="1" height="1" ONCLICK="alert(1)"/>',
    '<image href="https://evil.example/x.png"/>',
    '<use href="https://evil.example/s.svg#a"/>',
    '<use xlink:href="data:image/svg+xml;base64,PHN2Zz4="/>',
    '<a href="javascript:alert(1)"><rect/></a>',
    '<style>@import url(https://evil.example/a.css);</style>',
    "<style>rect { fill: url('https://evil.example/p.svg#x'); }</style>",
    '<rect style="fill: url(https://evil.example/x)"/>',
    '<rect fill="url(http://evil.example/x#y)"/>',
    '<animate attributeName="href" to="javascript:alert(1)"/>',
    '<set attributeName="onmouseover" to="alert(1)"/>',
    '<iframe xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example"/>',
])
def test_an_svg_with_script_or_external_references_is_refused(body):
    with pytest.raises(LogoError):
        check(SVG.format(body).encode(), "logo.svg")


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg"><text>&a;</text></svg>',
    b'<!DOCTYPE svg SYSTEM "file:///etc/passwd"><svg xmlns="http://www.w3.org/2000/svg"/>',
    b'<?xml-stylesheet href="https://evil.example/a.css"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    b"<svg><rect/></svg>",  # no SVG namespace
    b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
    b'<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>',  # not well-formed
])
def test_an_svg_with_a_doctype_entities_or_no_svg_root_is_refused(data):
    with pytest.raises(LogoError):
        check(data, "logo.svg")


# ----------------------------------------------------------------------------- stored


def test_update_stores_the_logo_in_the_database_and_removes_it(factory):
    tenant = factory.tenant("acme", "Acme Fleet")
    logo = check(image_bytes(), "logo.png")
    branding.update(tenant, logo=logo, color="#7A1F5C", support_email="help@acme.example",
                    support_url="https://help.acme.example/", names={"fr": "Acme Flotte"})
    db.session.commit()
    row = db.session.get(TenantLogo, tenant.id)
    assert row.data == logo.data and row.digest == logo.digest
    brand = branding.branding(tenant, "fr")
    assert brand.logo_url == f"/t/acme/logo?v={logo.digest[:16]}"
    assert brand.name == "Acme Flotte" and branding.branding(tenant, "en").name == "Acme Fleet"
    assert brand.color == "#7a1f5c" and brand.support_url == "https://help.acme.example/"
    branding.update(tenant, remove_logo=True, support_url="")
    db.session.commit()
    assert db.session.get(TenantLogo, tenant.id) is None
    assert branding.branding(tenant).logo_url is None
    assert branding.branding(tenant).support_url is None


@pytest.mark.parametrize("kwargs", [
    {"color": "#ffff00"}, {"support_email": "not an address"},
    {"support_url": "http://help.acme.example/"}, {"support_url": "javascript:alert(1)"},
])
def test_update_refuses_bad_settings_and_changes_nothing(factory, kwargs):
    tenant = factory.tenant("acme", "Acme Fleet")
    before = dict(tenant.settings)
    with pytest.raises(BrandingError):
        branding.update(tenant, **kwargs)
    assert tenant.settings == before


# ----------------------------------------------------------------------------- whose brand


def test_a_sign_in_shows_the_tenant_chosen_then_organization_then_the_clients(factory):
    acme = factory.tenant("acme", "Acme Fleet")
    globex = factory.tenant("globex", "Globex")
    owned = db.session.scalar(select(Client).filter_by(
        client_id=factory.client(tenant=acme).client_id))
    shared = db.session.scalar(select(Client).filter_by(
        client_id=factory.client(shared=True).client_id))
    assert branding.tenant_for_authorization(owned) == acme
    # An organization the client does not serve cannot dress it in another tenant's colours.
    assert branding.tenant_for_authorization(owned, "globex") == acme
    assert branding.tenant_for_authorization(owned, None, globex.id) == acme
    assert branding.tenant_for_authorization(shared) is None
    assert branding.tenant_for_authorization(shared, "globex") == globex
    assert branding.tenant_for_authorization(shared, "nope") is None
    assert branding.tenant_for_authorization(shared, "acme", globex.id) == globex
    assert branding.tenant_for_authorization(None, "acme") is None


def test_emails_show_the_uploaded_logo_at_its_absolute_address(app, factory):
    from idp.mail.messages import render_message

    tenant = factory.tenant("acme", "Acme Fleet")
    logo = check(image_bytes(), "logo.png")
    branding.update(tenant, logo=logo)
    db.session.commit()
    url = f"{app.config['IDP_ISSUER']}/t/acme/logo?v={logo.digest[:16]}"
    message = render_message("test", to="ops@example.com", locale="en", tenant=tenant)
    assert f'src="{url}"' in message.html
