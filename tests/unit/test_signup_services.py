"""Sign-up services without HTTP: addresses, company identifiers, branding, registration."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AccountToken, Tenant, User
from idp.services import company_identity as ci
from idp.services import company_signup, email_address, registration
from idp.services.branding import brand_css, branding, readable_brand_color

GOOD = "Tr0ub4dor&3-horse"


# ----------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(("raw", "stored"), [
    ("Bob@Example.COM", "bob@example.com"),
    ("  bob@example.com \n", "bob@example.com"),
    ("bob+tag@sub.example.co.uk", "bob+tag@sub.example.co.uk"),
    ("jose@exämple.fr", "jose@xn--exmple-cua.fr"),
    ("jose@EXÄMPLE.fr", "jose@xn--exmple-cua.fr"),
    ("x@xn--exmple-cua.fr", "x@xn--exmple-cua.fr"),
    ("o'brien@example.ie", "o'brien@example.ie"),
])
def test_addresses_normalise(raw, stored):
    assert email_address.normalize(raw) == stored


@pytest.mark.parametrize(("raw", "reason"), [
    (None, "malformed"), ("", "malformed"), ("bob", "malformed"), ("bob@", "malformed"),
    ("@example.com", "malformed"), ("bob@example", "malformed"), ("a@b@example.com", "malformed"),
    (".bob@example.com", "malformed"), ("bob.@example.com", "malformed"),
    ("bob@-example.com", "malformed"), ("bob@example.123", "malformed"),
    ("bob@[192.0.2.1]", "malformed"), ('"b b"@example.com', "malformed"),
    ("bob@exa mple.com", "malformed"), ("bob@example.com\r\nBcc: x@y.z", "malformed"),
    ("josé@example.fr", "non_ascii_local"), ("b" * 65 + "@example.com", "too_long"),
    ("b@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".fr", "too_long"),
    ("b" * 5000, "too_long"),
])
def test_addresses_refused(raw, reason):
    with pytest.raises(email_address.InvalidEmail) as info:
        email_address.normalize(raw)
    assert info.value.reason == reason


def test_display_shows_unicode_domains():
    assert email_address.display("jose@xn--exmple-cua.fr") == "jose@exämple.fr"
    assert email_address.display("bob@example.com") == "bob@example.com"


# ----------------------------------------------------------------------------- company identity


def test_luhn():
    assert ci.luhn_ok("732829320") and not ci.luhn_ok("732829321")
    assert ci.luhn_ok("79927398713")


@pytest.mark.parametrize(("kind", "raw", "stored"), [
    ("siren", "732 829 320", "732829320"),
    ("siren", "732-829-320", "732829320"),
    ("siret", "732.829.320.00074", "73282932000074"),
    ("siret", "35600000049837", "35600000049837"),
    ("vat", "fr44732829320", "FR44732829320"),
    ("vat", "FRXX732829320", "FRXX732829320"),  # letter keys: format only
    ("vat", "NL123456789B01", "NL123456789B01"),
    ("vat", "ATU12345678", "ATU12345678"),
    ("vat", "CHE-123.456.789 MWST", "CHE123456789MWST"),
    ("duns", "15 048 3782", "150483782"),
    ("other", "  RCS  Paris 123  ", "RCS Paris 123"),
])
def test_identifications_accepted(kind, raw, stored):
    assert ci.normalize_identification(kind, raw) == stored


@pytest.mark.parametrize(("kind", "raw", "reason"), [
    ("siren", "73282932", "format"), ("siren", "7328293200", "format"),
    ("siren", "73282932a", "format"), ("siren", "732829321", "checksum"),
    ("siret", "73282932000075", "checksum"), ("siret", "35600000049838", "checksum"),
    ("vat", "XX123456789", "format"), ("vat", "FR4473282932", "format"),
    ("vat", "FR45732829320", "checksum"), ("vat", "DE12345678", "format"),
    ("duns", "15048378", "format"), ("other", "x", "format"), ("other", "<b>", "format"),
    ("passport", "123", "type"), (None, "123", "type"), ("siren", "", "format"),
    ("siren", "1" * 101, "format"),
])
def test_identifications_refused(kind, raw, reason):
    with pytest.raises(ci.InvalidIdentification) as info:
        ci.normalize_identification(kind, raw)
    assert info.value.reason == reason


@pytest.mark.parametrize(("raw", "stored"), [
    ("+33 6 12 34 56 78", "+33612345678"), ("0033612345678", "+33612345678"),
    ("+33 (0)6 12 34 56 78", "+33612345678"), ("+1 (415) 555-0100", "+14155550100"),
    ("+44 20 7946 0958", "+442079460958"),
])
def test_phones_accepted(raw, stored):
    assert ci.normalize_phone(raw) == stored


@pytest.mark.parametrize("raw", ["", None, "0612345678", "+0612345678", "+33 6 12 34 56 7a",
                                 "+1234", "+1234567890123456", "+33 6 12\n34 56 78"[:0] + "x"])
def test_phones_refused(raw):
    with pytest.raises(ci.InvalidPhone):
        ci.normalize_phone(raw)


@pytest.mark.parametrize(("name", "slug"), [
    ("Acme Corp", "acme-corp"), ("Société Générale & Fils", "societe-generale-fils"),
    ("  --  ", "company"), ("東京", "company"), ("A" * 80, "a" * 50),
])
def test_slugify(name, slug):
    assert ci.slugify(name) == slug


def test_clean_name():
    assert ci.clean_name("  Ada   Lovelace ", 100) == "Ada Lovelace"
    assert ci.clean_name("Ada\x00", 100) is None
    assert ci.clean_name("Ada\u200bL", 100) is None  # format characters (invisible)
    assert ci.clean_name("x" * 101, 100) is None
    assert ci.clean_name("", 100) is None


# ----------------------------------------------------------------------------- branding


def test_contrast():
    assert readable_brand_color("#0b4dbb") and readable_brand_color("#000000")
    assert not readable_brand_color("#ffff00") and not readable_brand_color("#ffffff")


def test_branding_reads_tenant_settings():
    tenant = Tenant(slug="acme", name="Acme", settings={
        "brand_name": "Acme Fleet", "logo_url": "https://cdn.example.com/l.png",
        "support_email": "help@acme.example", "brand_color": "#0B4DBB",
        "support_phone": "+33 1 23 45 67 89"})
    brand = branding(tenant)
    assert brand.name == "Acme Fleet" and brand.logo_origin == "https://cdn.example.com"
    assert brand.support_email == "help@acme.example" and brand.color == "#0b4dbb"
    assert "#0b4dbb" in brand_css(brand)


def test_branding_ignores_bad_settings():
    tenant = Tenant(slug="acme", name="Acme", settings={
        "logo_url": "javascript:alert(1)", "support_email": "x\r\n@y", "brand_color": "red",
        "support_phone": "<script>"})
    brand = branding(tenant)
    assert brand.name == "Acme" and brand.logo_url is None and brand.support_email is None
    assert brand.color is None and brand.support_phone is None
    assert branding(Tenant(slug="a", name="A", settings=None)).name == "A"


# ----------------------------------------------------------------------------- services


@pytest.fixture
def tenant(factory):
    return factory.tenant("acme", "Acme")


def test_register_then_verify(app, tenant):
    with app.test_request_context():
        result = registration.register(tenant, "Bob@Example.com", GOOD, GOOD)
        assert result == registration.Registration("bob@example.com", "created")
        user = db.session.scalar(select(User).where(User.email == "bob@example.com"))
        assert registration.is_pending(user)
        raw, _row = registration.account_tokens.issue(
            "verify_email", ttl=60, user=user, email=user.email, tenant=tenant)
        db.session.commit()
        with pytest.raises(registration.WrongPassword):
            registration.confirm_with_password(raw, GOOD + "x")
        link = registration.confirm_with_password(raw, GOOD)
        verified = link.user
        assert verified.active and verified.email_verified and link.tenant.id == tenant.id
        assert not registration.is_pending(verified)
        with pytest.raises(registration.VerificationError):
            registration.check_link(raw)
        again = registration.register(tenant, "bob@example.com", GOOD, GOOD)
        assert again.outcome == "exists"


def test_register_closed_tenant(app, tenant):
    tenant.self_registration = False
    db.session.commit()
    with app.test_request_context(), pytest.raises(registration.RegistrationClosed):
        registration.register(tenant, "bob@example.com", GOOD, GOOD)


def test_register_reports_every_problem(app, tenant):
    with app.test_request_context(), pytest.raises(registration.RegistrationError) as info:
        registration.register(tenant, "nope", "weak", "weak")
    assert info.value.errors == {"email": "malformed", "password": "policy"}
    assert "upper" in info.value.problems


def test_resend_only_for_pending_accounts(app, tenant, factory):
    factory.user("alice@example.com", tenant=tenant)
    with app.test_request_context():
        assert registration.resend(tenant, "alice@example.com") == "nothing"
        assert registration.resend(tenant, "nobody@example.com") == "nothing"
        assert registration.resend(tenant, "bad") == "invalid"
        registration.register(tenant, "bob@example.com", GOOD, GOOD)
        assert registration.resend(tenant, "bob@example.com") == "sent"


def test_unique_slug(app, factory):
    factory.tenant("acme-corp", "Acme Corp")
    factory.tenant("acme-corp-2", "Acme Corp")
    assert company_signup.unique_slug("Acme Corp") == "acme-corp-3"
    assert company_signup.unique_slug("Globex") == "globex"


def test_complete_uses_the_link_once(app, factory):
    with app.test_request_context():
        company_signup.request_signup("founder@example.com", "founder@example.com")
        row = db.session.scalar(select(AccountToken))
        company = company_signup.check_company("Acme", "siren", "732829320", "+33612345678")
        person = company_signup.check_person("founder@example.com", "Ada", "L", GOOD, GOOD, "fr")
        user, tenant = company_signup.complete(row.id, company, person, GOOD)
        assert user.locale == "fr" and tenant.settings["identification_number"] == "732829320"
        assert [m.role for m in user.memberships] == ["super_admin"]
        with pytest.raises(company_signup.SignupLinkError):
            company_signup.complete(row.id, company, person, GOOD)


def test_check_company_reports_every_problem():
    with pytest.raises(company_signup.SignupError) as info:
        company_signup.check_company("", "siren", "123", "06")
    assert info.value.errors == {"company_name": "missing", "identification_number": "format",
                                 "contact_phone": "invalid"}
